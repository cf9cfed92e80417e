//! [`ForwardProxy`]: an HTTP egress proxy, as companies run in front of the
//! internet. It tunnels `CONNECT host:port` (https) and forwards
//! absolute-form requests (`POST http://host/path`, plain http), and
//! records every destination it was asked for.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::{TcpListener, TcpStream},
};

/// Longest request head the proxy reads.
const MAX_HEAD_BYTES: usize = 64 * 1024;

/// A running proxy on loopback; stops when dropped.
pub struct ForwardProxy {
    address: SocketAddr,
    destinations: Arc<Mutex<Vec<String>>>,
    server: tokio::task::JoinHandle<()>,
}

impl ForwardProxy {
    /// Starts the proxy on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let address = listener.local_addr().expect("proxy address");
        let destinations = Arc::new(Mutex::new(Vec::new()));
        let seen = destinations.clone();
        let server = switchyard_common::task::spawn_detached(
            "the proxy's accept loop, aborted on drop",
            async move {
                while let Ok((client, _)) = listener.accept().await {
                    let seen = seen.clone();
                    switchyard_common::task::spawn_detached(
                        "one proxied connection, ending with it",
                        async move {
                            let _ = relay(client, seen).await;
                        },
                    );
                }
            },
        );
        Self {
            address,
            destinations,
            server,
        }
    }

    /// The proxy's URL, for a provider's `proxy`.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Every `host:port` a client asked to reach, in order.
    pub fn destinations(&self) -> Vec<String> {
        self.destinations
            .lock()
            .map(|seen| seen.clone())
            .unwrap_or_default()
    }
}

impl Drop for ForwardProxy {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn relay(mut client: TcpStream, seen: Arc<Mutex<Vec<String>>>) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buffer = [0_u8; 4096];
    let end = loop {
        let read = client.read(&mut buffer).await?;
        if read == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buffer[..read]);
        if let Some(end) = head.windows(4).position(|window| window == b"\r\n\r\n") {
            break end + 4;
        }
        if head.len() > MAX_HEAD_BYTES {
            return Ok(());
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).into_owned();
    let request_line = text.lines().next().unwrap_or_default().to_owned();
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    if method == "CONNECT" {
        record(&seen, target);
        let mut upstream = TcpStream::connect(target).await?;
        client
            .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
            .await?;
        upstream.write_all(&head[end..]).await?;
        tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
        return Ok(());
    }
    // Absolute form: `POST http://host:port/path HTTP/1.1`.
    let Some(rest) = target.strip_prefix("http://") else {
        client
            .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
            .await?;
        return Ok(());
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let path = if path.is_empty() { "/" } else { path };
    record(&seen, authority);
    let mut upstream = TcpStream::connect(authority).await?;
    let origin_form = text.replacen(target, path, 1);
    upstream.write_all(origin_form.as_bytes()).await?;
    upstream.write_all(&head[end..]).await?;
    tokio::io::copy_bidirectional(&mut client, &mut upstream).await?;
    Ok(())
}

fn record(seen: &Mutex<Vec<String>>, destination: &str) {
    if let Ok(mut seen) = seen.lock() {
        seen.push(destination.to_owned());
    }
}
