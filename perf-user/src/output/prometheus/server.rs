//! The HTTP side of `--prometheus`: bound before any probe is placed, then `GET /metrics` (and
//! `HEAD`) served from the latest rendered text, with a cap on connections and on request size so
//! that hostile or idle clients cannot take what the tracer needs.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
    sync::{Semaphore, watch},
};

#[derive(Debug, thiserror::Error)]
pub enum PromError {
    #[error("--prometheus {addr}: cannot listen")]
    Bind { addr: SocketAddr, source: std::io::Error },
}

/// Binds now (before attaching), so a bad or busy address is reported before any probe is placed.
pub fn bind(addr: SocketAddr) -> Result<std::net::TcpListener, PromError> {
    let l = std::net::TcpListener::bind(addr).map_err(|source| PromError::Bind { addr, source })?;
    l.set_nonblocking(true).map_err(|source| PromError::Bind { addr, source })?;
    Ok(l)
}

/// Serves `GET /metrics` from `rx` until the runtime ends. Must run inside a tokio runtime.
pub fn spawn(listener: std::net::TcpListener, rx: watch::Receiver<String>) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    tokio::spawn(async move {
        loop {
            match listener.accept().await {
                Ok((stream, _)) => {
                    // Beyond the cap the connection is closed at once (dropped): idle clients can
                    // then never take the descriptors the tracer itself needs.
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else { continue };
                    let rx = rx.clone();
                    tokio::spawn(async move {
                        // A client that neither sends nor reads is dropped, not waited for.
                        let _ = tokio::time::timeout(Duration::from_secs(10), respond(stream, rx)).await;
                        drop(slot);
                    });
                }
                // Out of fds or similar: back off instead of spinning.
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    });
    Ok(())
}

const MAX_REQUEST: usize = 8192;

/// Connections served at once; a scraper needs one, a few dashboards a handful.
pub const MAX_CONNECTIONS: usize = 64;

async fn respond(mut stream: TcpStream, rx: watch::Receiver<String>) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > MAX_REQUEST {
            return write_response(&mut stream, "431 Request Header Fields Too Large", "text/plain", b"", false).await;
        }
    }
    let request = String::from_utf8_lossy(&buf);
    let mut parts = request.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let head = method == "HEAD";
    match (method, path) {
        ("GET" | "HEAD", "/metrics") => {
            let body = rx.borrow().clone();
            write_response(&mut stream, "200 OK", "text/plain; version=0.0.4; charset=utf-8", body.as_bytes(), head)
                .await
        }
        ("GET" | "HEAD", "/") => {
            write_response(&mut stream, "200 OK", "text/plain; charset=utf-8", b"perf-user: see /metrics\n", head).await
        }
        (_, "/metrics" | "/") => write_response(&mut stream, "405 Method Not Allowed", "text/plain", b"", false).await,
        _ => write_response(&mut stream, "404 Not Found", "text/plain", b"not found\n", head).await,
    }
}

async fn write_response(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> std::io::Result<()> {
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if !head_only {
        stream.write_all(body).await?;
    }
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_metrics_over_http() {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap_or_else(|e| panic!("{e}"));
        rt.block_on(async {
            let l = bind("127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
            let addr = l.local_addr().unwrap_or_else(|e| panic!("{e}"));
            let (tx, rx) = watch::channel("a 1\n".to_string());
            spawn(l, rx).unwrap_or_else(|e| panic!("{e}"));
            tx.send_replace("perf_ebpf_up 1\n".into());
            let get = |path: &'static str| async move {
                let mut s = TcpStream::connect(addr).await.unwrap_or_else(|e| panic!("{e}"));
                s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes()).await.unwrap_or_default();
                let mut out = String::new();
                s.read_to_string(&mut out).await.unwrap_or_default();
                out
            };
            let ok = get("/metrics").await;
            assert!(ok.starts_with("HTTP/1.1 200 OK\r\n"), "{ok}");
            assert!(ok.contains("version=0.0.4") && ok.ends_with("\r\n\r\nperf_ebpf_up 1\n"), "{ok}");
            assert!(get("/nope").await.starts_with("HTTP/1.1 404"));
            // The address is taken now: a second bind fails with one line.
            let e = bind(addr).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(e.contains("cannot listen") && !e.contains('\n'), "{e}");
        });
    }
}
