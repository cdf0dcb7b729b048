//! The client port: clients connect without the node handshake, announce themselves
//! with one hello frame, then send frames (delivered as
//! [`Incoming::Client`](crate::Incoming::Client)) and receive replies
//! ([`NetHandle::try_reply`](crate::NetHandle::try_reply)).
//!
//! The hello is a frame whose body is exactly [`CLIENT_HELLO_LEN`] bytes: the magic
//! `b"olyc"`, the version [`CLIENT_VERSION`] (u32 LE) and the client id (u64 LE); make
//! it with [`client_hello`]. It must arrive within
//! [`CLIENT_HELLO_TIMEOUT`]. The client id is the
//! client's claim, not a proof: transactions carry their own authentication where that
//! matters. Client frames are bounded by
//! [`NetConfig::max_client_frame`](crate::NetConfig::max_client_frame), client
//! connections by [`NetConfig::max_clients`](crate::NetConfig::max_clients), and each
//! connection's replies by its own queue.

use crate::config::CLIENT_HELLO_TIMEOUT;
use crate::frame::Frame;
use crate::network::{ClientConn, ClientSlot, CountGuard, Origin, Shared};
use crate::queue::Queue;
use crate::rt::{self, Listener, Stream};
use crate::stats::inc;
use olympus_types::frame::LEN_PREFIX;
use std::rc::Rc;
use std::time::Duration;

/// Version of the client hello.
pub const CLIENT_VERSION: u32 = 1;
/// Body bytes of the client hello.
pub const CLIENT_HELLO_LEN: usize = 16;
const CLIENT_MAGIC: [u8; 4] = *b"olyc";

/// The hello frame a client sends first.
pub fn client_hello(client: u64) -> Frame {
    let mut body = [0u8; CLIENT_HELLO_LEN];
    body[..4].copy_from_slice(&CLIENT_MAGIC);
    body[4..8].copy_from_slice(&CLIENT_VERSION.to_le_bytes());
    body[8..].copy_from_slice(&client.to_le_bytes());
    // 16 bytes are far below the frame limit.
    Frame::from_body(&body).unwrap_or_else(|_| unreachable!())
}

/// The client id of a hello body, if it is one.
pub fn parse_client_hello(body: &[u8]) -> Option<u64> {
    let body: &[u8; CLIENT_HELLO_LEN] = body.try_into().ok()?;
    if body[..4] != CLIENT_MAGIC || body[4..8] != CLIENT_VERSION.to_le_bytes() {
        return None;
    }
    let mut id = [0u8; 8];
    id.copy_from_slice(&body[8..]);
    Some(u64::from_le_bytes(id))
}

async fn read_hello(s: &mut Stream) -> Option<u64> {
    let mut prefix = [0u8; LEN_PREFIX];
    s.read_exact(&mut prefix).await.ok()?;
    if u32::from_le_bytes(prefix) as usize != CLIENT_HELLO_LEN {
        return None;
    }
    let mut body = [0u8; CLIENT_HELLO_LEN];
    s.read_exact(&mut body).await.ok()?;
    parse_client_hello(&body)
}

/// Accepts client connections for the life of the network.
pub(crate) async fn accept_loop(shared: Rc<Shared>, listener: Listener) {
    loop {
        match listener.accept().await {
            Ok(stream) => {
                let open = shared.clients.borrow().len() + shared.pending_clients.get();
                if open >= shared.limits.max_clients {
                    inc(&shared.stats.accepts_refused);
                    continue;
                }
                shared.spawn(connection(shared.clone(), stream));
            }
            Err(_) => rt::sleep(Duration::from_millis(10)).await,
        }
    }
}

async fn connection(shared: Rc<Shared>, mut stream: Stream) {
    let hello = {
        let _pending = CountGuard::new(&shared.pending_clients);
        rt::timeout(CLIENT_HELLO_TIMEOUT, read_hello(&mut stream))
            .await
            .flatten()
    };
    let Some(client) = hello else {
        inc(&shared.stats.clients_refused);
        return;
    };
    let Ok(mut writer) = stream.try_clone() else {
        return;
    };
    inc(&shared.stats.clients_accepted);
    let conn = ClientConn(shared.next_seq());
    let link = shared.new_link();
    let queue = Queue::new(
        shared.limits.client_queue_bound,
        shared.limits.client_queue_bytes,
    );
    shared.clients.borrow_mut().insert(
        conn,
        ClientSlot {
            link: link.clone(),
            queue: queue.clone(),
        },
    );
    let limit = shared.limits.max_client_frame;
    link.cancel
        .run(futures_lite::future::or(
            shared.read_loop(&mut stream, Origin::Client(conn), client, limit, &link),
            async {
                let _ = shared.write_loop(&mut writer, &queue).await;
            },
        ))
        .await;
    queue.close();
    shared.clients.borrow_mut().remove(&conn);
}
