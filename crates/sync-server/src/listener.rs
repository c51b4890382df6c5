//! A TCP listener with caps on open connections, in all and per client IP.
//! Over a cap, a new connection is answered with a 503 `too_many_connections`
//! and closed, instead of waiting unseen in the kernel's backlog. Every
//! accepted socket gets `TCP_NODELAY` (Nagle would delay small realtime
//! frames), a deadline for its first byte (a client that connects and says
//! nothing gives its slot back after `first_byte_timeout`), and one for a
//! stalled write (a client that stops reading what it asked for, a big page
//! or a stream, is let go after `write_stall_timeout` without progress).

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Sleep;

/// The peer address of a connection, for per-IP limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientAddr(pub SocketAddr);

/// The caps and the first-byte deadline of [`LimitedListener`].
#[derive(Debug, Clone, Copy)]
pub struct ListenerLimits {
    /// Most open connections.
    pub max_connections: usize,
    /// Most open connections from one IP address (0: no per-IP cap).
    pub max_connections_per_ip: usize,
    /// Longest wait, after accept, for a connection's first byte.
    pub first_byte_timeout: Duration,
    /// Longest a write may wait for the client to read.
    pub write_stall_timeout: Duration,
}

/// Open connections per client IP, under the per-IP cap.
type OpenPerIp = Arc<Mutex<HashMap<IpAddr, usize>>>;

/// A listener that holds one permit per open connection.
pub struct LimitedListener {
    inner: TcpListener,
    permits: Arc<Semaphore>,
    per_ip: OpenPerIp,
    limits: ListenerLimits,
}

impl LimitedListener {
    /// Wraps `inner` with `limits`.
    pub fn new(inner: TcpListener, limits: ListenerLimits) -> LimitedListener {
        LimitedListener {
            inner,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            per_ip: Arc::default(),
            limits,
        }
    }

    /// The next connection within the caps; connections over a cap are
    /// refused on the way. Accept errors (out of file descriptors, a peer
    /// gone before accept) are logged and retried after a pause.
    pub async fn accept(&mut self) -> (LimitedStream, SocketAddr) {
        loop {
            let (mut stream, addr) = match self.inner.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let _ = stream.set_nodelay(true);
            match self.slot(addr.ip()) {
                Some(slot) => {
                    let first_byte = Box::pin(tokio::time::sleep(self.limits.first_byte_timeout));
                    return (
                        LimitedStream {
                            stream,
                            first_byte: Some(first_byte),
                            write_stall_timeout: self.limits.write_stall_timeout,
                            stalled: None,
                            _slot: slot,
                        },
                        addr,
                    );
                }
                None => {
                    metrics::counter!("or3_connections_refused_total").increment(1);
                    tokio::spawn(async move {
                        let _ = stream.write_all(REFUSAL).await;
                        let _ = stream.shutdown().await;
                    });
                }
            }
        }
    }

    /// A slot for a connection from `ip`, or `None` over a cap.
    fn slot(&self, ip: IpAddr) -> Option<Slot> {
        let permit = self.permits.clone().try_acquire_owned().ok()?;
        let cap = self.limits.max_connections_per_ip;
        if cap > 0 {
            let mut per_ip = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
            let open = per_ip.entry(ip).or_default();
            if *open >= cap {
                return None;
            }
            *open += 1;
        }
        Some(Slot {
            _permit: permit,
            ip: (cap > 0).then(|| (ip, self.per_ip.clone())),
        })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

const REFUSAL: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\nconnection: close\r\ncontent-length: 91\r\n\r\n{\"error\":{\"code\":\"too_many_connections\",\"message\":\"the server is at its connection limit\"}}";

/// A connection's place under the caps, given back when it closes.
struct Slot {
    _permit: OwnedSemaphorePermit,
    /// Set when a per-IP cap counts this connection.
    ip: Option<(IpAddr, OpenPerIp)>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Some((ip, per_ip)) = &self.ip {
            let mut per_ip = per_ip.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(open) = per_ip.get_mut(ip) {
                *open -= 1;
                if *open == 0 {
                    per_ip.remove(ip);
                }
            }
        }
    }
}

/// The error a connection's read fails with when its first byte is late.
#[derive(Debug, thiserror::Error)]
#[error("no byte within the first-byte timeout")]
pub struct FirstByteTimeout;

/// An accepted connection; its slot is given back when it closes.
pub struct LimitedStream {
    stream: TcpStream,
    /// Armed until the first byte arrives.
    first_byte: Option<Pin<Box<Sleep>>>,
    write_stall_timeout: Duration,
    /// Armed while a write waits for the client to read.
    stalled: Option<Pin<Box<Sleep>>>,
    _slot: Slot,
}

impl LimitedStream {
    /// Passes a write's outcome on; a write that has waited past the
    /// deadline without progress fails with `TimedOut`.
    fn unless_stalled<T>(
        &mut self,
        cx: &mut Context<'_>,
        write: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if write.is_ready() {
            self.stalled = None;
            return write;
        }
        let timeout = self.write_stall_timeout;
        let deadline = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        if deadline.as_mut().poll(cx).is_ready() {
            metrics::counter!("or3_connections_closed_total", "reason" => "write_stall")
                .increment(1);
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client stopped reading",
            )));
        }
        Poll::Pending
    }
}

impl AsyncRead for LimitedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let read = Pin::new(&mut self.stream).poll_read(cx, buf);
        match &read {
            Poll::Ready(_) if buf.filled().len() > before => self.first_byte = None,
            Poll::Pending => {
                if let Some(deadline) = &mut self.first_byte {
                    if deadline.as_mut().poll(cx).is_ready() {
                        self.first_byte = None;
                        metrics::counter!("or3_connections_closed_total", "reason" => "first_byte_timeout")
                            .increment(1);
                        return Poll::Ready(Err(io::Error::new(
                            io::ErrorKind::TimedOut,
                            FirstByteTimeout,
                        )));
                    }
                }
            }
            Poll::Ready(_) => {}
        }
        read
    }
}

impl AsyncWrite for LimitedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let write = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.unless_stalled(cx, write)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flush = Pin::new(&mut self.stream).poll_flush(cx);
        self.unless_stalled(cx, flush)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let write = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.unless_stalled(cx, write)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }
}
