//! `HttpProducer`: downloads a dataset once (`crate::http`), then serves its records
//! from the cache file; `Served`, the serving-with-recovery both HTTP producers share.

use std::path::Path;

use crate::cache::{check_at_with_recovery, read_with_recovery, CacheReader};
use crate::error::{Error, HttpCause, Result};
use crate::http::{http_identity, s3, HttpOptions, HttpOutcome, NoObserver, Source};
use crate::identity::SourceIdentity;
use crate::log::warn;
use crate::producers::{CacheOutcome, Producer, RecordSink, ShapeCheck};
use crate::tensor::TensorRef;

/// The original runtime's constructors of an HTTP producer, over its `from_url`:
/// `new` (`http://{host}:{port}{path}`, cached at `cache_path` when `cache` is on and
/// `cache_path` is not empty) and `with_options`.
macro_rules! host_port_constructors {
    ($producer:ident) => {
        impl $producer {
            /// The original constructor: `http://{host}:{port}{path}`, cached at
            /// `cache_path` when `cache` is on and `cache_path` is not empty.
            pub fn new(
                host: &str,
                port: u16,
                path: &str,
                cache: bool,
                cache_path: &str,
            ) -> $crate::Result<$producer> {
                let opts = $crate::HttpOptions::cached_at(cache, cache_path);
                Self::with_options(host, port, path, opts)
            }

            /// `http://{host}:{port}{path}` with all the options.
            pub fn with_options(
                host: &str,
                port: u16,
                path: &str,
                opts: $crate::HttpOptions,
            ) -> $crate::Result<$producer> {
                Self::from_url(&$crate::http::url_from_parts(host, port, path)?, opts)
            }
        }
    };
}
pub(crate) use host_port_constructors;

/// Serves records from a cache reader; on damage found while reading, downloads
/// again and continues at the same record. Shared by both producers.
pub(crate) struct Served {
    pub source: Source,
    pub reader: CacheReader,
    pub outcome: HttpOutcome,
    check: Option<ShapeCheck>,
}

impl Served {
    pub fn new(source: Source, reader: CacheReader, outcome: HttpOutcome) -> Served {
        let check = source.opts.validate.then(ShapeCheck::default);
        Served {
            source,
            reader,
            outcome,
            check,
        }
    }

    /// Continues a shape check begun elsewhere (records seen while following).
    pub fn set_check(&mut self, c: ShapeCheck) {
        self.check = Some(c);
    }

    /// Downloads the dataset again after damage was found in its cache.
    fn rebuild(&mut self, e: Error) -> Result<()> {
        warn(&format!("{e}; downloading {} again", self.source.url));
        let (r, o) = self
            .source
            .acquire(true, &mut NoObserver, None)
            .map_err(|f| {
                let detail = format!("{e}; downloading it again failed: {f}");
                Error::http(HttpCause::of_error(&f), &self.source.url, detail)
            })?;
        self.reader = r;
        self.outcome = o;
        Ok(())
    }

    pub fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let index = self.reader.position() % self.reader.len().max(1);
        let loc = read_with_recovery(self, |s| &mut s.reader, |r| r.advance(), Self::rebuild)?;
        let t = self.reader.view(loc);
        if let Some(c) = self.check.as_mut() {
            c.check(index, t)?;
        }
        Ok(t)
    }

    /// Record `index` of the cache (O(1), CRC-checked, the cursor unmoved). Damage is
    /// handled as in `next_view`: the dataset is downloaded again, then record `index`
    /// of the new cache is served.
    pub fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        let loc = check_at_with_recovery(self, |s| &mut s.reader, index, Self::rebuild)?;
        let t = self.reader.view_checked(loc);
        if let Some(c) = self.check.as_mut() {
            c.check(index, t)?;
        }
        Ok(t)
    }

    /// The copying read: the next record copied into `out`, its CRC checked on the copy
    /// (`CacheReader::next_into`); damage is handled as in `next_view`.
    pub fn next_into(&mut self, out: &mut dyn RecordSink) -> Result<()> {
        let index = self.reader.position() % self.reader.len().max(1);
        self.checked(index, out, |s, out| {
            read_with_recovery(s, |s| &mut s.reader, |r| r.next_into(out), Self::rebuild)
        })
    }

    /// The copying random access (`CacheReader::at_into`); damage as in `view_at`.
    pub fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        self.checked(index, out, |s, out| {
            read_with_recovery(
                s,
                |s| &mut s.reader,
                |r| r.at_into(index, out),
                Self::rebuild,
            )
        })
    }

    /// Runs a copying `read` into `out`, then (with the `validate` option) the shape
    /// check of record `index` on the dtype and shape of the record copied last (the one
    /// whose CRC passed).
    fn checked(
        &mut self,
        index: u64,
        out: &mut dyn RecordSink,
        read: impl FnOnce(&mut Self, &mut dyn RecordSink) -> Result<()>,
    ) -> Result<()> {
        let Some(mut check) = self.check.take() else {
            return read(self, out);
        };
        let mut noted = Noted {
            out,
            dtype: crate::DType::UInt8,
            shape: Vec::new(),
        };
        let r = read(self, &mut noted).and_then(|()| {
            let t = TensorRef {
                dtype: noted.dtype,
                shape: &noted.shape,
                data: &[],
            };
            check.check(index, t)
        });
        self.check = Some(check);
        r
    }
    pub fn size(&self) -> usize {
        self.reader.len() as usize
    }

    pub fn skip(&mut self, n: usize) -> Result<()> {
        self.reader.skip(n)
    }
}

/// What opening an HTTP producer did, as every cached producer says it: the transport's
/// outcome with the reason an existing cache file was replaced (the one place the two
/// meet; the C API's `HarmonicsHttpOutcome` is read from the result).
pub(crate) fn cache_outcome(o: HttpOutcome, replaced: Option<String>) -> CacheOutcome {
    match (o, replaced) {
        (HttpOutcome::FromCache, _) => CacheOutcome::Reused,
        (HttpOutcome::NotModified, _) => CacheOutcome::Revalidated,
        (HttpOutcome::Downloaded, None) => CacheOutcome::Created,
        (HttpOutcome::Downloaded, Some(why)) => CacheOutcome::Rebuilt(why),
    }
}

/// A sink that notes the dtype and shape of what it copies (for the shape check).
struct Noted<'a> {
    out: &'a mut dyn RecordSink,
    dtype: crate::DType,
    shape: Vec<usize>,
}

impl RecordSink for Noted<'_> {
    fn copy(&mut self, t: TensorRef<'_>) -> Result<()> {
        self.dtype = t.dtype;
        self.shape.clear();
        self.shape.extend_from_slice(t.shape);
        self.out.copy(t)
    }
    fn copied(&self) -> &[u8] {
        self.out.copied()
    }
}

/// Downloads a dataset over HTTP(S) once, then serves its records from the cache
/// file (`next` cycles after the last record).
///
/// ```no_run
/// use harmonics_dataset::{CacheOutcome, HttpOptions, HttpProducer};
///
/// # fn main() -> harmonics_dataset::Result<()> {
/// let opts = HttpOptions { cache_path: "train.cache".into(), ..Default::default() };
/// let data = HttpProducer::from_url("https://data.example.com/train.bin", opts)?;
/// if data.outcome() == CacheOutcome::Reused {
///     println!("{} records from the cache, no request made", data.len());
/// }
/// # Ok(())
/// # }
/// ```
pub struct HttpProducer {
    served: Served,
}

impl std::fmt::Debug for HttpProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpProducer")
            .field("url", &s3::redact(&self.served.source.url))
            .field("outcome", &self.served.outcome)
            .field("records", &self.served.reader.len())
            .finish()
    }
}

host_port_constructors!(HttpProducer);

impl HttpProducer {
    /// Any `http://` or `https://` URL (hostnames, IPv4, `[IPv6]`), or `s3://bucket/key`
    /// (signed with AWS Signature V4: see [`s3`]).
    pub fn from_url(url: &str, opts: HttpOptions) -> Result<HttpProducer> {
        let mut source = Source::new(url, opts)?;
        let (reader, outcome) = source.acquire(false, &mut NoObserver, None)?;
        Ok(HttpProducer {
            served: Served::new(source, reader, outcome),
        })
    }

    pub fn url(&self) -> &str {
        &self.served.source.url
    }

    /// What opening did: `Reused` (no request), `Created` (downloaded), `Rebuilt(why)`
    /// (an existing cache file replaced: made from another URL or by another producer,
    /// damaged, or a newer version on revalidation), `Revalidated` (304).
    pub fn outcome(&self) -> CacheOutcome {
        cache_outcome(self.served.outcome, self.served.source.replaced_reason())
    }

    /// The persistent cache file, if there is one.
    pub fn cache_path(&self) -> Option<&Path> {
        self.served.source.cache_path.as_deref()
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.served.size()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Producer for HttpProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        self.served.next_view()
    }

    fn next_into(&mut self, out: &mut dyn RecordSink) -> Result<()> {
        self.served.next_into(out)
    }

    fn at_into(&mut self, index: u64, out: &mut dyn RecordSink) -> Result<()> {
        self.served.at_into(index, out)
    }

    fn view_intact(&self) -> Result<()> {
        self.served.reader.intact()
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.served.size())
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        self.served.skip(n)
    }

    fn source(&self) -> String {
        self.served.source.url.clone()
    }

    /// Kind `http`: the normalised URL and the validators of the body served.
    fn identity(&self) -> Result<Option<SourceIdentity>> {
        let meta = self.served.reader.metadata();
        Ok(Some(http_identity(&self.served.source.url, Some(meta))))
    }

    fn view_at(&mut self, index: u64) -> Result<TensorRef<'_>> {
        self.served.view_at(index)
    }

    fn has_random_access(&self) -> bool {
        true
    }

    /// The records are a local cache: its reader reads ahead
    /// (`CacheReader::read_ahead`).
    fn read_ahead(&mut self, order: crate::cache::ReadOrder) {
        self.served.reader.read_ahead(order)
    }
}
