//! Every bound on something that grows, in one place. Decoders and validators refer to
//! these names; nothing else hard-codes a size.

/// Largest committee a certificate bitmap can describe.
pub const MAX_NODES: usize = 256;
/// Largest frame (length prefix excluded) accepted from the network.
pub const MAX_FRAME_BYTES: usize = 32 * 1024 * 1024;
/// Largest transaction payload.
pub const MAX_TX_PAYLOAD: usize = 64 * 1024;
/// Most transactions in one batch.
pub const MAX_BATCH_TXS: usize = 16 * 1024;
/// Most encoded bytes in one batch.
pub const MAX_BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Most batches (inline or by digest) carried by one block.
pub const MAX_BATCHES_PER_BLOCK: usize = 128;
