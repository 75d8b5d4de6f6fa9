//! `CsvProducer`: one 1-D float32 tensor per CSV line.
//!
//! Parsing happens once, at construction, so a bad cell fails the constructor with
//! its row and column rather than at some record deep into training. Values are kept
//! packed (4 bytes each, smaller than the text they came from).

use std::io::Read;
use std::path::Path;

use crate::error::{Error, Result};
use crate::producer::{Producer, ShapeCheck};
use crate::tensor::{DType, TensorRef};

#[derive(Debug, Clone)]
pub struct CsvProducer {
    /// Little-endian float32 bytes of every record, back to back.
    data: Vec<u8>,
    /// Byte offset of record i's start; one more entry than records.
    offsets: Vec<usize>,
    cursor: usize,
    shape: [usize; 1],
    name: String,
}

impl CsvProducer {
    /// Reads the CSV file at `path`.
    pub fn open(path: impl AsRef<Path>, validate: bool) -> Result<CsvProducer> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|e| Error::io("cannot open CSV", path, e))?;
        Self::from_reader(file, &path.display().to_string(), validate)
    }

    /// Reads CSV text from any reader; `name` is used in messages.
    pub fn from_reader<R: Read>(input: R, name: &str, validate: bool) -> Result<CsvProducer> {
        let mut reader = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .trim(csv::Trim::All)
            .from_reader(input);
        let mut p = CsvProducer {
            data: Vec::new(),
            offsets: vec![0],
            cursor: 0,
            shape: [0],
            name: name.to_string(),
        };
        let mut check = ShapeCheck::default();
        let mut record = csv::StringRecord::new();
        loop {
            let more = reader.read_record(&mut record).map_err(|e| {
                let (row, column) = match e.position() {
                    Some(pos) => (pos.line(), 0),
                    None => (0, 0),
                };
                Error::Csv {
                    source_name: name.to_string(),
                    row,
                    column,
                    detail: e.to_string(),
                }
            })?;
            if !more {
                break;
            }
            let row = record.position().map_or(0, |p| p.line());
            let start = p.data.len();
            for (col, cell) in record.iter().enumerate() {
                let cell = unquote(cell);
                if cell.is_empty() {
                    continue;
                }
                let v: f32 = cell.parse().map_err(|_| Error::Csv {
                    source_name: name.to_string(),
                    row,
                    column: col as u64 + 1,
                    detail: format!("{cell:?} is not a number"),
                })?;
                p.data.extend_from_slice(&v.to_le_bytes());
            }
            p.offsets.push(p.data.len());
            if validate {
                let n = (p.data.len() - start) / 4;
                let index = p.offsets.len() as u64 - 2;
                check.check(
                    index,
                    TensorRef {
                        dtype: DType::Float32,
                        shape: &[n],
                        data: &p.data[start..],
                    },
                )?;
            }
        }
        Ok(p)
    }

    pub fn len(&self) -> usize {
        self.offsets.len() - 1
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Strips quotes the CSV reader left in place: a quoted cell preceded by spaces
/// (` "2.5"`) is not recognised as quoted by the CSV grammar, but users write it.
fn unquote(cell: &str) -> std::borrow::Cow<'_, str> {
    match cell.strip_prefix('"').and_then(|c| c.strip_suffix('"')) {
        Some(inner) => std::borrow::Cow::Owned(inner.trim().replace("\"\"", "\"")),
        None => std::borrow::Cow::Borrowed(cell),
    }
}

impl Producer for CsvProducer {
    fn next_view(&mut self) -> Result<TensorRef<'_>> {
        let n = self.len();
        if n == 0 {
            return Err(Error::Empty(format!("CSV {}", self.name)));
        }
        let i = self.cursor;
        self.cursor = (i + 1) % n;
        let bytes = &self.data[self.offsets[i]..self.offsets[i + 1]];
        self.shape = [bytes.len() / 4];
        Ok(TensorRef {
            dtype: DType::Float32,
            shape: &self.shape,
            data: bytes,
        })
    }

    fn size(&mut self) -> Result<usize> {
        Ok(self.len())
    }

    fn skip(&mut self, n: usize) -> Result<()> {
        if !self.is_empty() {
            self.cursor = (self.cursor + n) % self.len();
        }
        Ok(())
    }

    fn source(&self) -> String {
        format!("csv:{}", self.name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, validate: bool) -> Result<CsvProducer> {
        CsvProducer::from_reader(text.as_bytes(), "test.csv", validate)
    }

    #[test]
    fn quoted_cells_spaces_and_empty_cells() {
        let mut p = parse("1, \"2.5\" ,3\n 4,,5 \n\"6\"\n", false).unwrap();
        assert_eq!(p.size().unwrap(), 3);
        assert_eq!(p.next().unwrap().to_f32(), [1.0, 2.5, 3.0]);
        assert_eq!(p.next().unwrap().to_f32(), [4.0, 5.0]);
        assert_eq!(p.next().unwrap().to_f32(), [6.0]);
        assert_eq!(p.next().unwrap().to_f32(), [1.0, 2.5, 3.0], "cycles");
    }

    #[test]
    fn non_numeric_cell_names_row_and_column() {
        let err = parse("1,2\n3,abc\n", false).unwrap_err().to_string();
        assert_eq!(err, "test.csv: row 2, column 2: \"abc\" is not a number");
    }

    #[test]
    fn validate_rejects_a_row_of_another_length() {
        assert!(parse("1,2\n3,4\n", true).is_ok());
        let err = parse("1,2\n3,4\n5\n", true).unwrap_err().to_string();
        assert_eq!(
            err,
            "record 2: shape float32[1] differs from the first record's float32[2]"
        );
    }
}
