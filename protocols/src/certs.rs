//! Checks shared by the partially synchronous protocols (chained and two-chain
//! HotStuff): the 2f+1 quorum, quorum certificates and the shape of a block. Each
//! protocol passes its own vote statement, so certificates of one protocol never
//! verify as another's.

use crate::contract::VerifyError;
use olympus_crypto::Committee;
use olympus_types::{Block, Digest, Height, QuorumCert, View};

/// What a vote signs, per protocol.
pub type VoteStatement = fn(View, Height, &Digest) -> Digest;

/// n − f with n = 3f + 1 (2f + 1 at the optimum).
pub fn quorum(n: usize) -> usize {
    n - (n - 1) / 3
}

/// Verifies a QC against the committee (the genesis QC is accepted by rule).
pub fn verify_qc(
    qc: &QuorumCert,
    committee: &Committee,
    statement: VoteStatement,
) -> Result<(), VerifyError> {
    if qc.is_genesis() {
        return Ok(());
    }
    if qc.view == 0 || qc.height == 0 {
        return Err(VerifyError::BadCertificate(
            "non-genesis QC at view or height 0".into(),
        ));
    }
    committee
        .verify_aggregate(
            &statement(qc.view, qc.height, &qc.block),
            &qc.sig,
            quorum(committee.size()),
        )
        .map_err(|e| VerifyError::BadCertificate(format!("QC for view {}: {e}", qc.view)))
}

/// Checks a block's limits and shape — a known proposer, a parent that is its justify
/// QC's block one height below, a view above the justify view — and its justify QC.
pub fn verify_block(
    block: &Block,
    committee: &Committee,
    statement: VoteStatement,
) -> Result<(), VerifyError> {
    block
        .validate()
        .map_err(|e| VerifyError::Malformed(e.to_string()))?;
    if block.proposer.index() >= committee.size() {
        return Err(VerifyError::Malformed(format!(
            "unknown proposer {}",
            block.proposer
        )));
    }
    if block.parent != block.justify.block || block.height != block.justify.height + 1 {
        return Err(VerifyError::Malformed(
            "block does not extend its justify QC".into(),
        ));
    }
    if block.view <= block.justify.view {
        return Err(VerifyError::Malformed(
            "block view not above its justify view".into(),
        ));
    }
    verify_qc(&block.justify, committee, statement)
}
