//! A replica's own key pair.

use crate::{bls, insecure, CryptoError, Scheme};
use blst::min_sig::SecretKey;
use olympus_types::{Digest, NodeId, PublicKeyBytes, Signature};

/// A replica's key pair: its id, the scheme, the public key bytes and the secret.
///
/// `Debug` never prints the secret. The BLS secret is zeroed on drop (by `blst`).
#[derive(Clone)]
pub struct Keypair {
    id: NodeId,
    public: PublicKeyBytes,
    secret: Secret,
}

#[derive(Clone)]
enum Secret {
    Bls(SecretKey),
    /// The insecure scheme's secret; see [`crate::Scheme::Insecure`].
    Insecure([u8; 32]),
}

impl Keypair {
    /// Derives the key of node `id` from a 32-byte seed, deterministically:
    /// `ikm = blake3("olympus/keygen" || seed || id as u16 little-endian)`, then
    /// `KeyGen(ikm)` of the IETF BLS draft (`blst::SecretKey::key_gen`) for BLS, or the
    /// `ikm` itself as the insecure scheme's secret.
    ///
    /// For tests, the simulator and local clusters; a production key should come from a
    /// real source of randomness (use [`Keypair::from_secret_bytes`]).
    pub fn generate(scheme: Scheme, seed: &[u8; 32], id: NodeId) -> Keypair {
        let mut h = blake3::Hasher::new();
        h.update(b"olympus/keygen");
        h.update(seed);
        h.update(&id.0.to_le_bytes());
        let ikm: [u8; 32] = *h.finalize().as_bytes();
        match scheme {
            Scheme::Bls => {
                // `key_gen` fails only for key material shorter than 32 bytes.
                let sk = SecretKey::key_gen(&ikm, &[]).expect("ikm is 32 bytes long");
                Self::from_bls(id, sk)
            }
            Scheme::Insecure => Self::from_insecure(id, ikm),
        }
    }

    /// Rebuilds a key pair from [`Keypair::secret_bytes`]. For BLS the bytes are the
    /// big-endian secret scalar, which must be non-zero and below the group order
    /// ([`CryptoError::BadSecret`] otherwise); the insecure scheme takes any 32 bytes.
    pub fn from_secret_bytes(
        scheme: Scheme,
        id: NodeId,
        secret: &[u8; 32],
    ) -> Result<Keypair, CryptoError> {
        match scheme {
            Scheme::Bls => {
                let sk = SecretKey::from_bytes(secret).map_err(|_| CryptoError::BadSecret)?;
                Ok(Self::from_bls(id, sk))
            }
            Scheme::Insecure => Ok(Self::from_insecure(id, *secret)),
        }
    }

    fn from_bls(id: NodeId, sk: SecretKey) -> Keypair {
        let public = PublicKeyBytes(sk.sk_to_pk().compress());
        Keypair {
            id,
            public,
            secret: Secret::Bls(sk),
        }
    }

    fn from_insecure(id: NodeId, secret: [u8; 32]) -> Keypair {
        Keypair {
            id,
            public: insecure::public(&secret),
            secret: Secret::Insecure(secret),
        }
    }

    /// The secret as 32 bytes (big-endian scalar for BLS), for storing in a key file.
    pub fn secret_bytes(&self) -> [u8; 32] {
        match &self.secret {
            Secret::Bls(sk) => sk.to_bytes(),
            Secret::Insecure(s) => *s,
        }
    }

    pub fn id(&self) -> NodeId {
        self.id
    }

    pub fn scheme(&self) -> Scheme {
        match self.secret {
            Secret::Bls(_) => Scheme::Bls,
            Secret::Insecure(_) => Scheme::Insecure,
        }
    }

    /// The public key (for BLS: a compressed G2 point).
    pub fn public(&self) -> PublicKeyBytes {
        self.public
    }

    /// Signs a statement digest (built with `olympus_types::Statement`), under
    /// [`DST_SIG`](crate::DST_SIG) for BLS.
    pub fn sign(&self, msg: &Digest) -> Signature {
        match &self.secret {
            Secret::Bls(sk) => bls::sign(sk, &msg.0, bls::DST_SIG),
            Secret::Insecure(_) => insecure::sign(&self.public, &msg.0),
        }
    }

    /// The proof of possession of this key: for BLS, `PopProve` of the IETF draft — a
    /// signature on the compressed public key under [`DST_POP`](crate::DST_POP).
    /// Published with the public key; checked by [`crate::Committee::with_proofs`].
    pub fn proof_of_possession(&self) -> Signature {
        match &self.secret {
            Secret::Bls(sk) => bls::sign(sk, &self.public.0, bls::DST_POP),
            Secret::Insecure(_) => insecure::proof_of_possession(&self.public),
        }
    }
}

impl std::fmt::Debug for Keypair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keypair")
            .field("id", &self.id)
            .field("scheme", &self.scheme())
            .field("public", &self.public)
            .field("secret", &"<redacted>")
            .finish()
    }
}
