//! The verification shard: decoding and signature checks of peer messages on an
//! executor of their own.
//!
//! Checking signatures is most of a replica's CPU time (BLS pairings). When the
//! placement puts the `verify` role on its own shard, the main shard hands every
//! received protocol frame to it over a bounded cross-executor channel (the frame's
//! buffer moves; nothing is copied) and gets back a [`Verdict`]: the verified message,
//! or why it was refused. One verify shard keeps the frames of a link in order. When the
//! channel is full the main shard verifies the frame itself rather than wait, so a slow
//! verifier costs throughput, never liveness.

use crate::dissem::HEADER;
use crate::node::NodeProtocol;
use crate::wire::Wire;
use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use olympus_crypto::Committee;
use olympus_protocols::{Protocol, Verified};
use olympus_types::NodeId;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Frames in flight to, and verdicts in flight from, the verify shard.
pub const VERIFY_QUEUE: usize = 1024;

/// A frame body (header included) from a peer.
pub type Job = (NodeId, Vec<u8>);

/// What the verify shard found.
pub enum Verdict<M> {
    Ok {
        from: NodeId,
        msg: Verified<M>,
        took: Duration,
    },
    Undecodable {
        from: NodeId,
    },
    BadSignature {
        from: NodeId,
        took: Duration,
    },
}

/// Decodes and verifies one protocol frame body.
pub fn judge<P: NodeProtocol>(from: NodeId, body: &[u8], committee: &Committee) -> Verdict<P::Msg> {
    let Some(archive) = body.get(HEADER..) else {
        return Verdict::Undecodable { from };
    };
    let Ok(msg) = P::Msg::from_bytes(archive) else {
        return Verdict::Undecodable { from };
    };
    let t = Instant::now();
    let verdict = P::verify(msg, from, committee);
    let took = t.elapsed();
    match verdict {
        Ok(msg) => Verdict::Ok { from, msg, took },
        Err(_) => Verdict::BadSignature { from, took },
    }
}

/// The main shard's ends of the channels.
pub struct Ends<P: NodeProtocol> {
    pub jobs: SharedSender<Job>,
    pub verdicts: SharedReceiver<Verdict<<P as Protocol>::Msg>>,
}

/// Starts the verify shard on its own executor; returns the main shard's ends and the
/// thread to join (it ends when the main shard drops its job sender).
pub fn start<P: NodeProtocol>(
    placement: glommio::Placement,
    committee: Arc<Committee>,
    name: String,
) -> Result<(Ends<P>, glommio::ExecutorJoinHandle<()>), String> {
    let (jobs, job_rx) = shared_channel::new_bounded::<Job>(VERIFY_QUEUE);
    let (verdict_tx, verdicts) = shared_channel::new_bounded(VERIFY_QUEUE);
    let handle = olympus_net::rt::executor_builder(placement)
        .name(&name)
        .spawn(move || async move {
            let jobs = job_rx.connect().await;
            let out = verdict_tx.connect().await;
            while let Some((from, body)) = jobs.recv().await {
                if out.send(judge::<P>(from, &body, &committee)).await.is_err() {
                    break;
                }
            }
        })
        .map_err(|e| e.to_string())?;
    Ok((Ends { jobs, verdicts }, handle))
}
