//! The baseline of P3: the least a WebSocket fanout can cost on this
//! machine. A bare tokio-tungstenite broadcast server, run as its own
//! process like the gateway: a frame sent to `/publish` goes to every other
//! connection, cloned from one buffer. No HTTP, auth, storage or protocol.

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// What the server prints before its `ws://host:port` address.
pub const LISTENING: &str = "fanout floor listening on ";

/// Frames a subscriber may fall behind before it is skipped ahead (as the gateway's queue).
const QUEUE: usize = 256;

/// Serves until killed.
pub async fn serve() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    println!("{LISTENING}ws://{}", listener.local_addr()?);
    let (frames, _) = broadcast::channel::<Message>(QUEUE);
    loop {
        let (tcp, _) = listener.accept().await?;
        tcp.set_nodelay(true)?;
        let frames = frames.clone();
        tokio::spawn(async move {
            let _ = connection(tcp, frames).await;
        });
    }
}

// The handshake callback's signature (and its large error type) is tungstenite's.
#[allow(clippy::result_large_err)]
async fn connection(tcp: TcpStream, frames: broadcast::Sender<Message>) -> Result<()> {
    let mut path = String::new();
    let socket = tokio_tungstenite::accept_hdr_async_with_config(
        tcp,
        |request: &Request, response: Response| {
            path = request.uri().path().to_owned();
            Ok(response)
        },
        Some(crate::subscribers::small_buffers()),
    )
    .await?;
    let (mut sink, mut stream) = socket.split();
    if path == "/publish" {
        while let Some(Ok(message)) = stream.next().await {
            if message.is_text() {
                let _ = frames.send(message);
            }
        }
        return Ok(());
    }
    let mut queue = frames.subscribe();
    loop {
        tokio::select! {
            frame = queue.recv() => match frame {
                Ok(frame) => sink.send(frame).await?,
                Err(broadcast::error::RecvError::Lagged(_)) => {
                    sink.send(Message::text(r#"{"type":"poke"}"#)).await?;
                }
                Err(broadcast::error::RecvError::Closed) => return Ok(()),
            },
            incoming = stream.next() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return Ok(()),
                Some(Ok(_)) => {}
            },
        }
    }
}
