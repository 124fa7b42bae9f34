//! Fake exchanges for the connector tests: a scripted websocket server
//! (each connection plays its script, later ones are held open silently)
//! and a plain HTTP server for REST fakes, both on loopback.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
use tokio_tungstenite::tungstenite::Message;

/// One step of a scripted websocket session.
pub enum Step {
    /// Send a text frame.
    Send(String),
    /// Read client frames until one contains this text.
    Expect(&'static str),
    /// Drop the connection without a close handshake (after a short pause,
    /// so the client has read what was sent).
    Drop,
    /// Send a websocket ping (Binance's heartbeat); the client's pong is
    /// logged as `PONG`.
    Ping,
}

use Step::{Drop, Expect, Ping, Send};

/// A fake exchange: connection k plays script k; later connections are held
/// open silently. Logs request paths and every client frame.
pub struct FakeWs {
    addr: SocketAddr,
    log: Arc<Mutex<Vec<String>>>,
    _rt: tokio::runtime::Runtime,
}

impl FakeWs {
    pub fn start(scripts: Vec<Vec<Step>>) -> FakeWs {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let server_log = log.clone();
        rt.spawn(async move {
            let mut scripts = scripts.into_iter();
            loop {
                let (stream, _) = listener.accept().await.unwrap();
                let script = scripts.next().unwrap_or_default();
                let log = server_log.clone();
                tokio::spawn(async move {
                    let path_log = log.clone();
                    // The signature is tungstenite's handshake callback.
                    #[allow(clippy::result_large_err)]
                    let callback = move |req: &Request, resp: Response| {
                        path_log.lock().unwrap().push(format!("GET {}", req.uri()));
                        Ok(resp)
                    };
                    let Ok(mut ws) = tokio_tungstenite::accept_hdr_async(stream, callback).await
                    else {
                        return;
                    };
                    for step in script {
                        match step {
                            Send(text) => {
                                if ws.send(Message::text(text)).await.is_err() {
                                    return;
                                }
                            }
                            Expect(want) => loop {
                                let text = match ws.next().await {
                                    Some(Ok(Message::Text(t))) => t.to_string(),
                                    Some(Ok(Message::Pong(_))) => "PONG".to_string(),
                                    Some(Ok(_)) => continue,
                                    _ => return,
                                };
                                log.lock().unwrap().push(text.clone());
                                if text.contains(want) {
                                    break;
                                }
                            },
                            Ping => {
                                if ws.send(Message::Ping(b"hb".to_vec().into())).await.is_err() {
                                    return;
                                }
                            }
                            Drop => {
                                tokio::time::sleep(Duration::from_millis(300)).await;
                                return;
                            }
                        }
                    }
                    // Hold the connection until the client leaves.
                    while let Some(Ok(_)) = ws.next().await {}
                });
            }
        });
        FakeWs { addr, log, _rt: rt }
    }

    pub fn url(&self, path: &str) -> String {
        format!("ws://{}{path}", self.addr)
    }

    pub fn log(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }
}

/// Serves `app` on a loopback port from its own runtime (kept alive by the
/// returned handle).
pub fn serve(app: axum::Router) -> (tokio::runtime::Runtime, SocketAddr) {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap();
    let addr = listener.local_addr().unwrap();
    rt.spawn(async move { axum::serve(listener, app).await });
    (rt, addr)
}
