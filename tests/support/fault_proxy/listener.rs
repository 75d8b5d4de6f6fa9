//! The skeleton both proxies share: a listener on a free 127.0.0.1 port, one thread
//! per accepted connection with its own upstream connection, and a stop that wakes
//! the acceptor and shuts every live socket down.

use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// What the acceptor and the connection threads share.
#[derive(Default)]
pub(super) struct Shared {
    pub(super) stopping: AtomicBool,
    /// Connections accepted so far.
    pub(super) connections: AtomicUsize,
    /// Both sockets of every live connection, shut down when the proxy stops.
    live: Mutex<Vec<TcpStream>>,
}

/// A running listener; stops (and cuts every connection) when dropped.
pub(super) struct Listener {
    pub(super) port: u16,
    pub(super) shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl Listener {
    /// Listens on a free 127.0.0.1 port. Each accepted connection gets its own
    /// connection to `127.0.0.1:upstream_port` (without one, the client is closed)
    /// and a thread that runs `relay(client, upstream, accept index)`; both sockets
    /// are closed when `relay` returns.
    pub(super) fn start(
        name: &str,
        upstream_port: u16,
        relay: impl Fn(&TcpStream, &TcpStream, usize) + Send + Sync + 'static,
    ) -> Listener {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let port = listener.local_addr().unwrap().port();
        let shared = Arc::new(Shared::default());
        let (st, relay, name) = (shared.clone(), Arc::new(relay), name.to_string());
        let acceptor = std::thread::Builder::new()
            .name(format!("{name}-accept"))
            .spawn(move || {
                for client in listener.incoming() {
                    if st.stopping.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(client) = client else { continue };
                    let index = st.connections.fetch_add(1, Ordering::SeqCst);
                    let (st, relay) = (st.clone(), relay.clone());
                    std::thread::Builder::new()
                        .name(format!("{name}-conn-{index}"))
                        .spawn(move || serve(&st, client, upstream_port, index, &*relay))
                        .expect("spawn proxy connection thread");
                }
            })
            .expect("spawn proxy acceptor");
        Listener {
            port,
            shared,
            acceptor: Some(acceptor),
        }
    }

    pub(super) fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }
}

fn serve(
    st: &Shared,
    client: TcpStream,
    upstream_port: u16,
    index: usize,
    relay: &dyn Fn(&TcpStream, &TcpStream, usize),
) {
    if st.stopping.load(Ordering::SeqCst) {
        return;
    }
    let Ok(upstream) = TcpStream::connect(("127.0.0.1", upstream_port)) else {
        // Upstream down: the client sees the connection closed.
        let _ = client.shutdown(Shutdown::Both);
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = upstream.set_nodelay(true);
    {
        let mut live = st.live.lock().unwrap();
        live.push(client.try_clone().unwrap());
        live.push(upstream.try_clone().unwrap());
    }
    relay(&client, &upstream, index);
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the acceptor with a connection of our own.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(h) = self.acceptor.take() {
            let _ = h.join();
        }
        for s in self.shared.live.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
    }
}
