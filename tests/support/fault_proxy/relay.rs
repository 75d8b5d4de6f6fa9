//! The HTTP relay of [`FaultProxy`](super::FaultProxy): frames each exchange on a
//! connection, records it, and applies the fault rules to the response.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::Ordering;

use super::{find, Exchange, Faults, State};

/// Relays one connection, exchange after exchange, until either side closes or a
/// response is cut; the caller closes both sockets afterwards.
pub(super) fn serve_connection(
    st: &State,
    client: &TcpStream,
    upstream: &TcpStream,
    connection: usize,
) {
    let mut from_client = BufReader::new(client.try_clone().unwrap());
    let mut to_client = client.try_clone().unwrap();
    let mut from_upstream = BufReader::new(upstream.try_clone().unwrap());
    let mut to_upstream = upstream.try_clone().unwrap();

    // One exchange per request head, until the client closes.
    while let Some(head) = read_head(&mut from_client) {
        let index = st.next_exchange.fetch_add(1, Ordering::SeqCst);
        let (request_line, request_headers) = parse_head(&head);
        let mut ex = Exchange {
            index,
            connection,
            request_line,
            request_headers,
            ..Exchange::default()
        };
        publish(st, &ex);
        let is_head = ex.request_line.starts_with("HEAD ");
        if to_upstream.write_all(&head).is_err() {
            record(st, ex);
            break;
        }
        // A request body (not used by the producer, forwarded for completeness).
        if let Some(n) = content_length(&ex.request_headers) {
            if copy_exact(&mut from_client, &mut to_upstream, n).is_err() {
                record(st, ex);
                break;
            }
        }

        // Response head.
        let Some(rhead) = read_head(&mut from_upstream) else {
            record(st, ex);
            break;
        };
        let (status_line, response_headers) = parse_head(&rhead);
        ex.status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        ex.status_line = status_line.clone();
        ex.response_headers = response_headers;
        publish(st, &ex);
        let faults = st.faults.lock().unwrap().clone();
        if let Some((_, pause)) = faults.delay_response.iter().find(|(i, _)| *i == index) {
            std::thread::sleep(*pause);
        }
        let out_head = rewrite_head(&status_line, &ex.response_headers, &faults);
        if to_client.write_all(&out_head).is_err() {
            record(st, ex);
            break;
        }
        let cut_after = faults
            .cut
            .iter()
            .find(|(i, _)| *i == index)
            .map(|(_, n)| *n);

        // Response body, framed as the server framed it.
        let no_body = is_head || ex.status == 204 || ex.status == 304 || ex.status < 200;
        let chunked = ex
            .response_header("transfer-encoding")
            .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
        let mut counter = BodyCounter {
            st,
            sent: 0,
            cut_after,
        };
        let result = if no_body {
            Ok(true)
        } else if chunked {
            forward_chunked(&mut from_upstream, &mut to_client, &mut counter)
        } else if let Some(n) = content_length(&ex.response_headers) {
            forward_length(&mut from_upstream, &mut to_client, &mut counter, Some(n))
        } else {
            forward_length(&mut from_upstream, &mut to_client, &mut counter, None)
        };
        ex.body_bytes = counter.sent;
        let keep_going = match result {
            Ok(complete) => {
                ex.complete = complete;
                complete && !header_says_close(&ex.response_headers)
            }
            Err(Cut) => {
                ex.cut = true;
                let _ = to_client.flush();
                if let Some(hook) = &faults.on_cut {
                    hook();
                }
                false
            }
        };
        let _ = to_client.flush();
        record(st, ex);
        if !keep_going {
            break;
        }
    }
}

/// Stores the exchange's current state (replacing the earlier one of that index).
fn publish(st: &State, ex: &Exchange) {
    let mut all = st.exchanges.lock().unwrap();
    match all.iter_mut().find(|e| e.index == ex.index) {
        Some(e) => *e = ex.clone(),
        None => all.push(ex.clone()),
    }
}

/// Stores the exchange's final state.
fn record(st: &State, mut ex: Exchange) {
    ex.finished = true;
    publish(st, &ex);
}

/// The body was cut on purpose.
struct Cut;

struct BodyCounter<'a> {
    st: &'a State,
    sent: u64,
    cut_after: Option<u64>,
}

impl BodyCounter<'_> {
    /// How many of `available` payload bytes may still be forwarded.
    fn allowance(&self, available: usize) -> usize {
        match self.cut_after {
            Some(limit) => (limit.saturating_sub(self.sent) as usize).min(available),
            None => available,
        }
    }

    fn add(&mut self, n: usize) -> Result<(), Cut> {
        self.sent += n as u64;
        self.st.body_bytes.fetch_add(n as u64, Ordering::SeqCst);
        self.check()
    }

    fn check(&self) -> Result<(), Cut> {
        match self.cut_after {
            Some(limit) if self.sent >= limit => Err(Cut),
            _ => Ok(()),
        }
    }
}

/// Forwards `len` payload bytes (or up to EOF when `None`). Ok(true) when complete.
fn forward_length(
    from: &mut BufReader<TcpStream>,
    to: &mut TcpStream,
    counter: &mut BodyCounter<'_>,
    len: Option<u64>,
) -> Result<bool, Cut> {
    let mut left = len;
    loop {
        counter.check()?;
        if left == Some(0) {
            return Ok(true);
        }
        let buf = match from.fill_buf() {
            Ok(b) => b,
            Err(_) => return Ok(false),
        };
        if buf.is_empty() {
            // EOF: complete only for a close-delimited body.
            return Ok(len.is_none());
        }
        let mut n = buf.len();
        if let Some(l) = left {
            n = n.min(l as usize);
        }
        let n = counter.allowance(n);
        if to.write_all(&buf[..n]).is_err() {
            return Ok(false);
        }
        from.consume(n);
        if let Some(l) = left.as_mut() {
            *l -= n as u64;
        }
        counter.add(n)?;
    }
}

/// Forwards a chunked body, framing and all; counts only chunk payload.
fn forward_chunked(
    from: &mut BufReader<TcpStream>,
    to: &mut TcpStream,
    counter: &mut BodyCounter<'_>,
) -> Result<bool, Cut> {
    loop {
        let mut size_line = Vec::new();
        if from.read_until(b'\n', &mut size_line).unwrap_or(0) == 0 {
            return Ok(false);
        }
        let text = String::from_utf8_lossy(&size_line);
        let size_hex = text.trim().split(';').next().unwrap_or("").trim();
        let Ok(size) = u64::from_str_radix(size_hex, 16) else {
            return Ok(false);
        };
        if to.write_all(&size_line).is_err() {
            return Ok(false);
        }
        if size == 0 {
            // Trailers, then the empty line.
            loop {
                let mut line = Vec::new();
                if from.read_until(b'\n', &mut line).unwrap_or(0) == 0 {
                    return Ok(false);
                }
                if to.write_all(&line).is_err() {
                    return Ok(false);
                }
                if line == b"\r\n" || line == b"\n" {
                    return Ok(true);
                }
            }
        }
        if !forward_length(from, to, counter, Some(size))? {
            return Ok(false);
        }
        let mut crlf = [0u8; 2];
        if from.read_exact(&mut crlf).is_err() || to.write_all(&crlf).is_err() {
            return Ok(false);
        }
    }
}

fn copy_exact(from: &mut BufReader<TcpStream>, to: &mut TcpStream, n: u64) -> std::io::Result<()> {
    let copied = std::io::copy(&mut from.take(n), to)?;
    if copied == n {
        Ok(())
    } else {
        Err(std::io::ErrorKind::UnexpectedEof.into())
    }
}

/// Reads a message head up to and including the blank line; None on EOF/error.
fn read_head(r: &mut BufReader<TcpStream>) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    loop {
        let before = head.len();
        match r.read_until(b'\n', &mut head) {
            Ok(0) | Err(_) => return None,
            Ok(_) => {}
        }
        let line = &head[before..];
        if line == b"\r\n" || line == b"\n" {
            if before == 0 {
                // Stray empty line between messages.
                head.clear();
                continue;
            }
            return Some(head);
        }
    }
}

fn parse_head(head: &[u8]) -> (String, Vec<(String, String)>) {
    let text = String::from_utf8_lossy(head);
    let mut lines = text.split("\r\n").flat_map(|l| l.split('\n'));
    let first = lines.next().unwrap_or("").to_string();
    let headers = lines
        .filter(|l| !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    (first, headers)
}

fn rewrite_head(status_line: &str, headers: &[(String, String)], faults: &Faults) -> Vec<u8> {
    let mut out = format!("{status_line}\r\n");
    for (k, v) in headers {
        if faults
            .strip_response_headers
            .iter()
            .any(|s| s.eq_ignore_ascii_case(k))
        {
            continue;
        }
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    for (k, v) in &faults.add_response_headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str("\r\n");
    out.into_bytes()
}

fn content_length(headers: &[(String, String)]) -> Option<u64> {
    find(headers, "content-length")?.trim().parse().ok()
}

fn header_says_close(headers: &[(String, String)]) -> bool {
    find(headers, "connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
}
