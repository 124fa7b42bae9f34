//! The live stream (`/api/stream`) over a real socket: ids resume without
//! gaps or duplicates after a reconnect with `Last-Event-ID`, a resume
//! point older than the replay buffer gets a `reset`, idle connections get
//! heartbeats, and a client that never reads is dropped while 100 others
//! keep receiving every event. Deliveries come from the real dataflow
//! (`dataflows::harness`) and are applied to the live view as the router does.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cryptoflow::http::stream::StreamConfig;
use cryptoflow::http::LiveView;
use dataflows::Delivery;

const T0: u64 = 1_700_000_000_000;

fn deliveries(minutes: u64) -> Vec<Delivery> {
    dataflows::harness::simulated_deliveries(11, T0, minutes * 60_000, 2.0).unwrap()
}

struct Server {
    addr: String,
    view: Arc<LiveView>,
    rt: tokio::runtime::Runtime,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

fn server(config: StreamConfig) -> Server {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let view = Arc::new(LiveView::with_stream(config));
    let listener = rt
        .block_on(cryptoflow::http::bind("127.0.0.1:0".parse().unwrap()))
        .unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    // No per-client rate limit: a hundred clients come from one address.
    let access = cryptoflow::http::guard::Access {
        rate_limit: None,
        ..Default::default()
    };
    let state = view.clone();
    rt.spawn(async move {
        cryptoflow::http::serve_with(listener, state, &access, async {
            let _ = rx.await;
        })
        .await
    });
    Server {
        addr,
        view,
        rt,
        stop: Some(tx),
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        let _ = &self.rt;
    }
}

/// One parsed SSE event (comments are returned as kind ":").
#[derive(Clone, Debug, PartialEq)]
struct Ev {
    id: Option<String>,
    kind: String,
    data: String,
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: &str, last_id: Option<&str>) -> Client {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        let resume = last_id.map_or(String::new(), |id| format!("Last-Event-ID: {id}\r\n"));
        write!(
            s,
            "GET /api/stream HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n{resume}\r\n"
        )
        .unwrap();
        let mut reader = BufReader::new(s);
        let mut line = String::new();
        loop {
            line.clear();
            reader.read_line(&mut line).unwrap();
            if line == "\r\n" {
                break;
            }
            assert!(!line.is_empty(), "connection closed in the headers");
        }
        Client { reader }
    }

    /// The next event or comment; None at the end of the stream.
    fn next(&mut self) -> Option<Ev> {
        let mut ev = Ev {
            id: None,
            kind: "message".into(),
            data: String::new(),
        };
        let mut any = false;
        let mut line = String::new();
        loop {
            line.clear();
            // Chunked transfer: size lines and blank separators are skipped
            // by only looking at SSE field lines.
            match self.reader.read_line(&mut line) {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
            let l = line.trim_end_matches(['\r', '\n']);
            if let Some(c) = l.strip_prefix(':') {
                return Some(Ev {
                    id: None,
                    kind: ":".into(),
                    data: c.trim().into(),
                });
            } else if let Some(v) = l.strip_prefix("id: ") {
                ev.id = Some(v.into());
                any = true;
            } else if let Some(v) = l.strip_prefix("event: ") {
                ev.kind = v.into();
                any = true;
            } else if let Some(v) = l.strip_prefix("data: ") {
                ev.data.push_str(v);
                any = true;
            } else if l.is_empty() && any {
                return Some(ev);
            } else if l == "0" && !any {
                return None;
            }
        }
    }

    /// The next event that is not a comment.
    fn event(&mut self) -> Option<Ev> {
        loop {
            let e = self.next()?;
            if e.kind != ":" {
                return Some(e);
            }
        }
    }
}

fn seq(id: &str) -> u64 {
    id.rsplit_once('-').unwrap().1.parse().unwrap()
}

#[test]
fn a_reconnecting_client_gets_every_event_exactly_once() {
    let s = server(StreamConfig {
        replay: 100_000,
        heartbeat: Duration::from_secs(15),
    });
    let ds = deliveries(6);
    let mut reference = Client::connect(&s.addr, None);
    let mut a = Client::connect(&s.addr, None);
    assert_eq!(reference.event().unwrap().kind, "hello");
    assert_eq!(a.event().unwrap().kind, "hello");
    let half = ds.len() / 2;
    for d in &ds[..half] {
        s.view.apply(d);
    }
    // Read some of what was published, then drop the connection.
    let mut got = Vec::new();
    for _ in 0..50 {
        got.push(a.event().unwrap());
    }
    drop(a);
    for d in &ds[half..] {
        s.view.apply(d);
    }
    let last = got.last().unwrap().id.clone().unwrap();
    let mut b = Client::connect(&s.addr, Some(&last));
    let total = s.view.hub().meters.events.get();
    while got.last().map(|e| seq(e.id.as_deref().unwrap())) != Some(total) {
        got.push(b.event().expect("the resumed stream ended early"));
    }
    let mut all = Vec::new();
    while all.len() < got.len() {
        all.push(reference.event().unwrap());
    }
    assert!(total > 1_000, "only {total} events");
    assert_eq!(got.len() as u64, total, "gap or duplicate after the resume");
    assert_eq!(
        got, all,
        "the resumed client saw something else than the connected one"
    );
    let ids: Vec<u64> = got.iter().map(|e| seq(e.id.as_deref().unwrap())).collect();
    assert!(ids.windows(2).all(|w| w[1] == w[0] + 1));
    for kind in ["bar", "best", "champion", "stats"] {
        assert!(got.iter().any(|e| e.kind == kind), "no {kind} event");
    }
    // A retraction travels with the insert that replaces it.
    assert!(got
        .iter()
        .any(|e| e.kind == "best" && e.data.contains("\"op\":\"retract\"")));
}

#[test]
fn a_resume_point_older_than_the_buffer_gets_a_reset_and_idle_clients_heartbeats() {
    let s = server(StreamConfig {
        replay: 64,
        heartbeat: Duration::from_millis(200),
    });
    let mut a = Client::connect(&s.addr, None);
    let hello = a.event().unwrap();
    assert_eq!(hello.kind, "hello");
    let start = Instant::now();
    let beat = a.next().unwrap();
    assert_eq!((beat.kind.as_str(), beat.data.as_str()), (":", "heartbeat"));
    assert!(start.elapsed() < Duration::from_secs(5));
    drop(a);
    for d in deliveries(4).iter().take(400) {
        s.view.apply(d);
    }
    let mut b = Client::connect(&s.addr, hello.id.as_deref());
    let first = b.event().unwrap();
    assert_eq!(first.kind, "reset", "{first:?}");
    // An id from another server process is a reset too.
    let mut c = Client::connect(&s.addr, Some("12345-1"));
    assert_eq!(c.event().unwrap().kind, "reset");
}

/// A socket with a tiny receive buffer, so the server's writes back up fast.
fn small_buffer_stream(addr: &str) -> TcpStream {
    use std::os::fd::{AsRawFd, FromRawFd};
    let sa: std::net::SocketAddr = addr.parse().unwrap();
    // SAFETY: plain socket syscalls on a descriptor we own; it is handed to
    // TcpStream, which closes it.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        assert!(fd >= 0);
        let size: libc::c_int = 4096;
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUF,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of::<libc::c_int>() as u32,
        );
        let std::net::SocketAddr::V4(v4) = sa else {
            panic!("ipv4 expected")
        };
        let addr = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: v4.port().to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(*v4.ip()).to_be(),
            },
            sin_zero: [0; 8],
        };
        let rc = libc::connect(
            fd,
            &addr as *const _ as *const libc::sockaddr,
            std::mem::size_of::<libc::sockaddr_in>() as u32,
        );
        assert_eq!(rc, 0);
        let s = TcpStream::from_raw_fd(fd);
        assert_eq!(s.as_raw_fd(), fd);
        s
    }
}

#[test]
fn a_client_that_never_reads_is_dropped_and_a_hundred_others_get_everything() {
    const REPLAY: u64 = 2_048;
    let s = server(StreamConfig {
        replay: REPLAY as usize,
        heartbeat: Duration::from_secs(15),
    });
    let ds = deliveries(10);
    // The slow one: asks for the stream and never reads.
    let mut slow = small_buffer_stream(&s.addr);
    write!(
        slow,
        "GET /api/stream HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let clients: Vec<_> = (0..100)
        .map(|_| {
            let mut c = Client::connect(&s.addr, None);
            assert_eq!(c.event().unwrap().kind, "hello");
            c
        })
        .collect();
    let meters = s.view.hub().meters.clone();
    assert!(
        common::wait_for(Duration::from_secs(10), || (meters.clients.get() == 101)
            .then_some(()))
        .is_some()
    );
    // Readers drain concurrently while the router publishes.
    let progress: Arc<Vec<std::sync::atomic::AtomicU64>> =
        Arc::new((0..100).map(|_| Default::default()).collect());
    let readers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            let progress = progress.clone();
            std::thread::spawn(move || {
                let mut ids = Vec::new();
                while let Some(e) = c.event() {
                    if e.kind == "done" {
                        break;
                    }
                    let id = seq(e.id.as_deref().unwrap());
                    progress[i].store(id, std::sync::atomic::Ordering::Relaxed);
                    ids.push(id);
                }
                ids
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    for d in &ds {
        s.view.apply(d);
        // Publishing never waits on clients. The test paces itself so the
        // 100 readers (threads sharing two cores with the server) stay
        // within half the buffer; the slow client falls behind regardless.
        let published = meters.events.get();
        while progress
            .iter()
            .map(|p| p.load(std::sync::atomic::Ordering::Relaxed))
            .min()
            .is_some_and(|m| published - m > REPLAY / 2)
        {
            assert!(Instant::now() < deadline, "readers stopped progressing");
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert!(
        meters.events.get() > 4 * REPLAY,
        "too few events to overflow the buffer"
    );
    let total = meters.events.get();
    s.view.hub().publish([("done", "{}".to_string())]);
    for (i, r) in readers.into_iter().enumerate() {
        let ids = r.join().unwrap();
        assert_eq!(ids.len() as u64, total, "client {i} missed events");
        assert!(
            ids.windows(2).all(|w| w[1] == w[0] + 1),
            "client {i}: out of order"
        );
    }
    assert!(meters.dropped.get() >= 1, "the slow client was not dropped");
    assert!(
        meters.clients.get() <= 100,
        "the slow client is still counted"
    );
    // When it finally reads, its stream has ended short of the last event.
    slow.set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut text = String::new();
    let _ = std::io::Read::read_to_string(&mut slow, &mut text);
    assert!(
        !text.contains(&format!("-{}\n", total + 1)),
        "the dropped client got the last event"
    );
}
