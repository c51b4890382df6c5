//! The lean HTTP/1.1 client of P8's load, so that the load costs the machine
//! little beside the server it measures: one kept-alive TCP connection per
//! client, each request written from bytes prepared before the clock starts
//! (`workload::SinglePushRequest`), each answer read into a buffer the
//! connection reuses and its head parsed with `httparse`. Per request that is
//! what `wrk` does: a write, a read, a head parse. (`reqwest` builds a URL, a
//! header map, a body and a response for each request and hands it to a
//! connection task of its own: on 2 cores shared with the server, the 200
//! clients' `reqwest` calls were a bound of their own.)
//!
//! The clients run on a runtime of their own ([`LoadRuntime`]), one thread,
//! apart from the bench's other tasks.

use anyhow::{bail, Context, Result};
use std::future::Future;
use std::net::SocketAddr;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

/// Most header lines an answer may have.
const MAX_HEADERS: usize = 32;

/// Room kept free in a connection's buffer before each read.
const READ_ROOM: usize = 4096;

/// A kept-alive connection to the server, one request at a time.
pub struct KeepAliveConnection {
    stream: TcpStream,
    buf: Vec<u8>,
}

/// An answer: its status and body, borrowed from the connection's buffer.
pub struct Answer<'a> {
    /// The HTTP status code.
    pub status: u16,
    /// The body (`Content-Length` bytes).
    pub body: &'a [u8],
}

impl Answer<'_> {
    /// The body as text for an error message (its first 300 bytes).
    pub fn body_excerpt(&self) -> String {
        String::from_utf8_lossy(&self.body[..self.body.len().min(300)]).into_owned()
    }
}

impl KeepAliveConnection {
    /// Connects to `addr` (no Nagle: each request is one write).
    pub async fn open(addr: SocketAddr) -> Result<KeepAliveConnection> {
        let stream = TcpStream::connect(addr)
            .await
            .with_context(|| format!("cannot connect to {addr}"))?;
        stream.set_nodelay(true)?;
        Ok(KeepAliveConnection {
            stream,
            buf: Vec::with_capacity(READ_ROOM),
        })
    }

    /// Sends `request`, a whole HTTP/1.1 request, and reads its answer. The
    /// answer must give its length (`Content-Length`; the server's do) and be
    /// all the server sent: requests are not pipelined.
    pub async fn exchange(&mut self, request: &[u8]) -> Result<Answer<'_>> {
        self.stream.write_all(request).await?;
        self.buf.clear();
        let (status, head_len, body_len) = loop {
            self.read_more().await?;
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
        };
        let end = head_len + body_len;
        while self.buf.len() < end {
            self.read_more().await?;
        }
        if self.buf.len() > end {
            bail!("the server sent more than one answer to one request");
        }
        Ok(Answer {
            status,
            body: &self.buf[head_len..end],
        })
    }

    async fn read_more(&mut self) -> Result<()> {
        self.buf.reserve(READ_ROOM);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            bail!(
                "the server closed the connection ({} bytes of an answer read)",
                self.buf.len()
            );
        }
        Ok(())
    }
}

/// The status, the head's length and the body's length of the answer at the
/// start of `buf`; `None` while its head is incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, usize)>> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response
        .parse(buf)
        .context("an answer that is not HTTP/1.1")?
    {
        httparse::Status::Complete(len) => len,
        httparse::Status::Partial => return Ok(None),
    };
    let status = response.code.context("an answer without a status")?;
    let mut body_len = None;
    for header in response.headers.iter() {
        if header.name.eq_ignore_ascii_case("content-length") {
            let text = std::str::from_utf8(header.value).ok();
            body_len = Some(
                text.and_then(|t| t.trim().parse::<usize>().ok())
                    .context("a Content-Length that is not a number")?,
            );
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            bail!("a chunked answer (this client reads answers of a known length only)");
        }
    }
    let body_len =
        body_len.with_context(|| format!("a {status} answer without a Content-Length"))?;
    Ok(Some((status, head_len, body_len)))
}

/// The head of a request to the bench's server: `method path`, its host, its
/// bearer token and, with a body, the body's type (JSON) and length.
pub fn request_head(
    method: &str,
    path: &str,
    addr: SocketAddr,
    token: &str,
    body_len: Option<usize>,
) -> Vec<u8> {
    let mut head =
        format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n");
    if let Some(len) = body_len {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {len}\r\n"
        ));
    }
    head.push_str("\r\n");
    head.into_bytes()
}

/// Whether `needle` occurs in `haystack` (answers are a few hundred bytes).
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// A tokio runtime for the load alone, on one worker thread of its own: its
/// clients' tasks are not scheduled among the bench's others (the
/// connection sampler, the baselines), and one thread that polls many
/// ready sockets per wakeup is the cheapest way to drive them. Its sockets
/// must be opened and used on it.
pub struct LoadRuntime {
    runtime: Option<Runtime>,
}

impl LoadRuntime {
    /// Starts the runtime's thread.
    pub fn new() -> Result<LoadRuntime> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("or3-bench-load")
            .enable_all()
            .build()
            .context("cannot start the load's runtime")?;
        Ok(LoadRuntime {
            runtime: Some(runtime),
        })
    }

    /// Runs `task` on the load's thread.
    pub fn spawn<T: Send + 'static>(
        &self,
        task: impl Future<Output = T> + Send + 'static,
    ) -> JoinHandle<T> {
        self.runtime
            .as_ref()
            .expect("the runtime lives until dropped")
            .spawn(task)
    }
}

impl Drop for LoadRuntime {
    fn drop(&mut self) {
        // Dropped from async code: a blocking shutdown would panic there.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_gives_the_status_and_the_body_length() {
        let answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 12\r\n\r\n{\"ok\":true}\n";
        let (status, head, body) = parse_head(answer).unwrap().unwrap();
        assert_eq!((status, body), (200, 12));
        assert_eq!(&answer[head..head + body], b"{\"ok\":true}\n");
        assert!(
            parse_head(&answer[..20]).unwrap().is_none(),
            "a partial head"
        );
    }

    #[test]
    fn answers_of_unknown_length_are_refused() {
        let chunked = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n";
        assert!(parse_head(chunked).is_err());
        let without = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n";
        assert!(parse_head(without).is_err());
    }

    #[test]
    fn a_needle_is_found_only_where_it_is() {
        let body = br#"{"results":[{"op_id":"a","status":"applied"}]}"#;
        assert!(contains(body, br#""op_id":"a","status":"applied""#));
        assert!(!contains(body, br#""op_id":"b","status":"applied""#));
        assert!(!contains(body, b""));
    }
}
