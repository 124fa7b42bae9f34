//! Stopping: the one [`Stop`] signal every long-running part of cryptoflow
//! watches (timely workers, the delivery router, the HTTP server, the feeds,
//! replay and the exchange connectors), and the watch on Ctrl-C / SIGTERM
//! that sets it.
//!
//! A stop is a request, not a kill: whoever holds a [`Stop`] checks it at its
//! own safe points (between polls, between batches, after a commit) and
//! finishes what it holds. Nothing here has time semantics beyond "has stop
//! been asked yet". It must never exit the process or drop work itself.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// A stop signal shared by the workers, the router and the HTTP server.
#[derive(Clone, Default)]
pub struct Stop(Arc<(AtomicBool, tokio::sync::Notify)>);

impl std::fmt::Debug for Stop {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("Stop").field(&self.is_set()).finish()
    }
}

impl Stop {
    /// A fresh, unset signal.
    pub fn new() -> Self {
        Self::default()
    }
    /// Asks everything to stop.
    pub fn trigger(&self) {
        self.0 .0.store(true, Ordering::SeqCst);
        self.0 .1.notify_waiters();
    }
    /// Has stop been asked?
    pub fn is_set(&self) -> bool {
        self.0 .0.load(Ordering::SeqCst)
    }
    /// Resolves once stop is asked.
    pub async fn wait(&self) {
        while !self.is_set() {
            let notified = self.0 .1.notified();
            if self.is_set() {
                break;
            }
            let _ = tokio::time::timeout(Duration::from_millis(200), notified).await;
        }
    }
}

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}

/// A stop set by Ctrl-C or SIGTERM, watched from a thread of its own (with
/// its own small runtime), for commands whose work is synchronous or runs
/// on a runtime that must not own the watch. The thread lives as long as
/// the process, so call this once per command, not per unit of work.
pub fn stop_on_signal() -> Stop {
    let stop = Stop::new();
    let signal_stop = stop.clone();
    std::thread::spawn(move || {
        if let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        {
            rt.block_on(shutdown_signal());
            signal_stop.trigger();
        }
    });
    stop
}
