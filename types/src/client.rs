//! What clients and replicas say to each other on the client port.
//!
//! A client opens one connection to every replica it wants receipts from, sends the
//! transport's hello, then a [`ClientRequest::Challenge`] with a fresh nonce. The
//! replica answers [`ClientReply::Identity`]: its signature over
//! [`identity_statement`]`(client, nonce, node)`. The client checks it against the
//! committee key of the member it dialled, so every later frame on that connection is
//! attributed to an authenticated replica (authentication at connect time, like peer
//! links). From then on the client sends [`ClientRequest::Submit`] frames, each holding
//! many transactions, and receives one [`ClientReply::Committed`] per committed block
//! holding its transactions, or [`ClientReply::Busy`] for transactions the replica could
//! not take (its pool was full: the client may retry them later).
//!
//! A Byzantine replica can lie in a receipt; that is why a client accepts a transaction as
//! committed only when f + 1 distinct authenticated replicas report the same
//! `(height, block)` for it.

use crate::digest::{Digest, Statement};
use crate::ids::NodeId;
use crate::tx::Transaction;
use crate::Signature;
use rkyv::{Archive, Deserialize, Serialize};

/// Most transactions in one [`ClientRequest::Submit`].
pub const MAX_SUBMIT_TXS: usize = 4096;
/// Most nonces in one [`ClientReply::Committed`] or [`ClientReply::Busy`].
pub const MAX_RECEIPT_NONCES: usize = 64 * 1024;

/// From a client to a replica.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ClientRequest {
    /// Asks the replica to prove its identity by signing this nonce.
    Challenge([u8; 32]),
    /// Transactions to order; their `client` must be the id of the connection's hello.
    Submit(Vec<Transaction>),
}

/// From a replica to a client.
#[derive(Archive, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[rkyv(derive(Debug))]
pub enum ClientReply {
    /// The answer to a challenge: `node` signed [`identity_statement`].
    Identity { node: NodeId, signature: Signature },
    /// These nonces of the client were executed in block `block` at `height`.
    Committed {
        height: u64,
        block: Digest,
        nonces: Vec<u64>,
    },
    /// These nonces were refused (the replica's pool was full); nothing was executed.
    Busy { nonces: Vec<u64> },
}

/// What a replica signs to prove its identity to client `client`.
pub fn identity_statement(client: u64, nonce: &[u8; 32], node: NodeId) -> Digest {
    Statement::new("olympus/v1/client-identity")
        .u64(client)
        .bytes(nonce)
        .u64(node.0 as u64)
        .finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::{decode, encode};

    #[test]
    fn requests_and_replies_round_trip_and_garbage_is_an_error() {
        let r = ClientRequest::Submit(vec![Transaction {
            client: 3,
            nonce: 9,
            payload: vec![1, 2, 3],
        }]);
        let b = encode(&r).unwrap();
        assert_eq!(decode::<ClientRequest>(&b).unwrap(), r);
        let c = ClientReply::Committed {
            height: 4,
            block: Digest::of(b"x"),
            nonces: vec![1, 2, 9],
        };
        let b = encode(&c).unwrap();
        assert_eq!(decode::<ClientReply>(&b).unwrap(), c);
        for cut in 0..b.len() {
            let _ = decode::<ClientReply>(&b[..cut]);
        }
        assert!(decode::<ClientRequest>(&[0xff; 7]).is_err());
    }

    #[test]
    fn identity_statement_binds_every_field() {
        let n = [7u8; 32];
        let a = identity_statement(1, &n, NodeId(2));
        assert_ne!(a, identity_statement(2, &n, NodeId(2)));
        assert_ne!(a, identity_statement(1, &[8; 32], NodeId(2)));
        assert_ne!(a, identity_statement(1, &n, NodeId(3)));
    }
}
