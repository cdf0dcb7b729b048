//! Configuration files: one TOML file per node and one for clients, written by
//! `olympus genconfig` and read by `olympus node` and `olympus client`.
//!
//! A node file holds the node's own id and secret key, the whole committee (ids,
//! addresses, public keys with their proofs of possession) and the protocol parameters.
//! The client file holds the committee without any secret. [`CommitteeConfig::validate`]
//! checks everything that can be checked without cryptography; the caller checks the
//! proofs of possession and that the secret key matches the node's public key.

use crate::limits::MAX_NODES;
use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// Why a configuration file was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is not a valid configuration: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error("invalid configuration: {0}")]
    Invalid(String),
}

/// One committee member as every node and client sees it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct MemberConfig {
    pub id: u16,
    /// Where peers connect.
    pub peer_addr: SocketAddr,
    /// Where clients connect.
    pub client_addr: SocketAddr,
    /// Hex of the 96-byte compressed BLS public key (a G2 point).
    pub public_key: String,
    /// Hex of the 48-byte proof of possession of that key (a G1 point).
    pub proof_of_possession: String,
}

/// The committee: members in id order, `0..n`.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct CommitteeConfig {
    pub members: Vec<MemberConfig>,
}

/// Protocol parameters shared by the committee.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
#[serde(default)]
pub struct ProtocolParams {
    /// Protocol name (`hotstuff`, ...).
    pub protocol: String,
    /// Base view timeout of the partially synchronous protocols.
    pub view_timeout_ms: u64,
    /// Δ of the synchronous protocols.
    pub delta_ms: u64,
    /// Transactions per block (the leader fills blocks up to this many).
    pub block_size: usize,
    /// How batches reach the replicas: `inline` (in the leader's proposals) or
    /// `digests` (broadcast by their makers first; proposals carry digests).
    #[serde(default = "default_dissemination")]
    pub dissemination: String,
}

fn default_dissemination() -> String {
    "inline".into()
}

/// The dissemination modes of [`ProtocolParams::dissemination`].
pub const DISSEMINATION_MODES: &[&str] = &["inline", "digests"];

impl Default for ProtocolParams {
    fn default() -> Self {
        ProtocolParams {
            protocol: "hotstuff".into(),
            view_timeout_ms: 1000,
            delta_ms: 50,
            block_size: 400,
            dissemination: default_dissemination(),
        }
    }
}

/// A node's own file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct NodeConfig {
    pub id: u16,
    /// Hex of the 32-byte secret key. Keep this file private.
    pub secret_key: String,
    /// Where the node keeps its batch log and safety state.
    pub data_dir: PathBuf,
    #[serde(default)]
    pub params: ProtocolParams,
    pub committee: CommitteeConfig,
}

/// The clients' file.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct ClientConfig {
    #[serde(default)]
    pub params: ProtocolParams,
    pub committee: CommitteeConfig,
}

fn hex_array<const N: usize>(what: &str, id: u16, s: &str) -> Result<[u8; N], ConfigError> {
    let v =
        hex::decode(s).map_err(|e| ConfigError::Invalid(format!("{what} of member {id}: {e}")))?;
    v.try_into().map_err(|v: Vec<u8>| {
        ConfigError::Invalid(format!(
            "{what} of member {id} has {} bytes, expected {N}",
            v.len()
        ))
    })
}

impl MemberConfig {
    pub fn public_key_bytes(&self) -> Result<[u8; crate::PUBLIC_KEY_LEN], ConfigError> {
        hex_array("public_key", self.id, &self.public_key)
    }
    pub fn pop_bytes(&self) -> Result<[u8; crate::SIGNATURE_LEN], ConfigError> {
        hex_array("proof_of_possession", self.id, &self.proof_of_possession)
    }
}

impl CommitteeConfig {
    pub fn size(&self) -> usize {
        self.members.len()
    }

    /// Ids are exactly `0..n` in order, addresses are distinct, keys are well-formed hex.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let n = self.members.len();
        if n == 0 || n > MAX_NODES {
            return Err(ConfigError::Invalid(format!(
                "committee has {n} members; allowed 1..={MAX_NODES}"
            )));
        }
        let mut addrs = std::collections::HashSet::new();
        for (i, m) in self.members.iter().enumerate() {
            if m.id as usize != i {
                return Err(ConfigError::Invalid(format!(
                    "member #{i} has id {}; ids must be 0..n in order",
                    m.id
                )));
            }
            for a in [m.peer_addr, m.client_addr] {
                if !addrs.insert(a) {
                    return Err(ConfigError::Invalid(format!("address {a} is used twice")));
                }
            }
            m.public_key_bytes()?;
            m.pop_bytes()?;
        }
        Ok(())
    }
}

impl NodeConfig {
    pub fn secret_bytes(&self) -> Result<[u8; 32], ConfigError> {
        hex_array("secret_key", self.id, &self.secret_key)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        self.committee.validate()?;
        if self.id as usize >= self.committee.size() {
            return Err(ConfigError::Invalid(format!(
                "node id {} is not in the committee of {}",
                self.id,
                self.committee.size()
            )));
        }
        self.secret_bytes()?;
        Ok(())
    }
}

fn read<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.into(),
        source,
    })?;
    toml::from_str(&text).map_err(|source| ConfigError::Parse {
        path: path.into(),
        source,
    })
}

/// Reads and validates a node file.
pub fn load_node(path: &Path) -> Result<NodeConfig, ConfigError> {
    let c: NodeConfig = read(path)?;
    c.validate()?;
    Ok(c)
}

/// Reads and validates a client file.
pub fn load_client(path: &Path) -> Result<ClientConfig, ConfigError> {
    let c: ClientConfig = read(path)?;
    c.committee.validate()?;
    Ok(c)
}

/// Serializes a configuration to TOML.
pub fn to_toml<T: Serialize>(c: &T) -> Result<String, ConfigError> {
    toml::to_string_pretty(c).map_err(|e| ConfigError::Invalid(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: u16) -> MemberConfig {
        MemberConfig {
            id,
            peer_addr: format!("127.0.0.1:{}", 7000 + id).parse().unwrap(),
            client_addr: format!("127.0.0.1:{}", 8000 + id).parse().unwrap(),
            public_key: hex::encode([id as u8; crate::PUBLIC_KEY_LEN]),
            proof_of_possession: hex::encode([1u8; crate::SIGNATURE_LEN]),
        }
    }

    fn node() -> NodeConfig {
        NodeConfig {
            id: 1,
            secret_key: hex::encode([9u8; 32]),
            data_dir: "data/n1".into(),
            params: ProtocolParams::default(),
            committee: CommitteeConfig {
                members: (0..4).map(member).collect(),
            },
        }
    }

    #[test]
    fn round_trips_through_toml() {
        let c = node();
        let text = to_toml(&c).unwrap();
        let back: NodeConfig = toml::from_str(&text).unwrap();
        assert_eq!(back, c);
        back.validate().unwrap();
    }

    #[test]
    fn refuses_bad_committees() {
        let mut c = node();
        c.committee.members[2].id = 5;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("ids must be 0..n"));
        let mut c = node();
        c.committee.members[3].peer_addr = c.committee.members[0].peer_addr;
        assert!(c.validate().unwrap_err().to_string().contains("used twice"));
        let mut c = node();
        c.committee.members[1].public_key = "abcd".into();
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("expected 96"));
        let mut c = node();
        c.id = 4;
        assert!(c
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not in the committee"));
        let mut c = node();
        c.secret_key = "zz".into();
        assert!(c.validate().is_err());
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = load_node(Path::new("/nonexistent/olympus.toml")).unwrap_err();
        assert!(e.to_string().contains("/nonexistent/olympus.toml"));
    }
}
