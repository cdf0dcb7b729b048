//! BLAKE3-256 digests and domain-separated signing statements.

use rkyv::{Archive, Deserialize, Serialize};

/// A BLAKE3-256 digest. The only hash olympus signs or compares across nodes.
#[derive(
    Archive, Serialize, Deserialize, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default,
)]
#[rkyv(derive(Debug, PartialEq, Eq, Hash))]
pub struct Digest(pub [u8; 32]);

impl Digest {
    pub const ZERO: Digest = Digest([0; 32]);

    /// The digest of a byte string.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// A short hex prefix, for logs.
    pub fn short(&self) -> String {
        self.0[..4].iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl From<&ArchivedDigest> for Digest {
    fn from(a: &ArchivedDigest) -> Self {
        Digest(a.0)
    }
}

impl std::fmt::Debug for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "#{}", self.short())
    }
}

impl std::fmt::Display for Digest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.short())
    }
}

/// Builds the digest of a domain-separated statement: what a replica signs.
///
/// Every signed message starts with a domain tag (`"hotstuff/vote"`,
/// `"hotstuff/timeout"`, ...) so that a signature for one kind of statement can never be
/// replayed as another. Fields are appended in fixed-width little-endian form.
pub struct Statement(blake3::Hasher);

impl Statement {
    pub fn new(domain: &str) -> Self {
        let mut h = blake3::Hasher::new();
        h.update(b"olympus/v1/");
        h.update(&(domain.len() as u32).to_le_bytes());
        h.update(domain.as_bytes());
        Statement(h)
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.update(&v.to_le_bytes());
        self
    }
    pub fn digest(mut self, d: &Digest) -> Self {
        self.0.update(&d.0);
        self
    }
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.0.update(&(b.len() as u64).to_le_bytes());
        self.0.update(b);
        self
    }
    pub fn finish(self) -> Digest {
        Digest(*self.0.finalize().as_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statements_are_domain_separated() {
        let a = Statement::new("a/vote").u64(1).finish();
        let b = Statement::new("a/timeout").u64(1).finish();
        assert_ne!(a, b);
        // The length prefix keeps ("ab", "c") apart from ("a", "bc").
        let c = Statement::new("x").bytes(b"ab").bytes(b"c").finish();
        let d = Statement::new("x").bytes(b"a").bytes(b"bc").finish();
        assert_ne!(c, d);
    }
}
