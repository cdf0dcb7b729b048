//! Placement: which shard (pinned executor) runs which role of a node.
//!
//! Roles are network I/O, the mempool, the leader half, the voter half and signature
//! verification. On a small machine several roles share a shard ([`Placement::compact`]:
//! everything on one shard, the default for loopback clusters on few cores); on a large
//! one each role gets its own ([`Placement::spread`]). The plan is printed at start-up.

use std::fmt;

/// A node's roles.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Role {
    Network,
    Mempool,
    Leader,
    Voter,
    Verify,
}

impl Role {
    pub const ALL: [Role; 5] = [
        Role::Network,
        Role::Mempool,
        Role::Leader,
        Role::Voter,
        Role::Verify,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Role::Network => "network",
            Role::Mempool => "mempool",
            Role::Leader => "leader",
            Role::Voter => "voter",
            Role::Verify => "verify",
        }
    }
}

/// A role-to-shard map; shards are numbered `0..shards()`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    assignment: Vec<(Role, usize)>,
    /// CPU of each shard, when pinned.
    cpus: Vec<Option<usize>>,
}

/// Why a placement was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlacementError {
    #[error(
        "unknown placement {0:?}: use compact, verify, spread, or role=shard pairs like network=0,voter=1"
    )]
    Unknown(String),
    #[error("role {0} is not placed")]
    Missing(&'static str),
}

impl Placement {
    /// Every role on shard 0.
    pub fn compact() -> Self {
        Placement {
            assignment: Role::ALL.iter().map(|r| (*r, 0)).collect(),
            cpus: vec![None],
        }
    }

    /// Network, mempool, leader and voter on shard 0; signature verification on
    /// shard 1.
    pub fn verify_apart() -> Self {
        Placement {
            assignment: Role::ALL
                .iter()
                .map(|r| (*r, usize::from(*r == Role::Verify)))
                .collect(),
            cpus: vec![None, None],
        }
    }

    /// One shard per role, pinned to CPUs `first_cpu..` when `pin`.
    pub fn spread(first_cpu: Option<usize>) -> Self {
        let assignment: Vec<_> = Role::ALL.iter().enumerate().map(|(i, r)| (*r, i)).collect();
        let cpus = (0..assignment.len())
            .map(|i| first_cpu.map(|c| c + i))
            .collect();
        Placement { assignment, cpus }
    }

    /// Parses `compact`, `spread`, or `role=shard,...` (every role must be named).
    pub fn parse(s: &str) -> Result<Self, PlacementError> {
        match s {
            "compact" => return Ok(Self::compact()),
            "spread" => return Ok(Self::spread(None)),
            "verify" => return Ok(Self::verify_apart()),
            _ => {}
        }
        let mut assignment = Vec::new();
        for part in s.split(',') {
            let (role, shard) = part
                .split_once('=')
                .ok_or_else(|| PlacementError::Unknown(s.into()))?;
            let role = Role::ALL
                .iter()
                .find(|r| r.name() == role.trim())
                .ok_or_else(|| PlacementError::Unknown(s.into()))?;
            let shard: usize = shard
                .trim()
                .parse()
                .map_err(|_| PlacementError::Unknown(s.into()))?;
            assignment.push((*role, shard));
        }
        for r in Role::ALL {
            if !assignment.iter().any(|(x, _)| *x == r) {
                return Err(PlacementError::Missing(r.name()));
            }
        }
        let shards = assignment.iter().map(|(_, s)| s + 1).max().unwrap_or(1);
        Ok(Placement {
            assignment,
            cpus: vec![None; shards],
        })
    }

    pub fn shard_of(&self, role: Role) -> usize {
        self.assignment
            .iter()
            .find(|(r, _)| *r == role)
            .map_or(0, |(_, s)| *s)
    }

    pub fn shards(&self) -> usize {
        self.cpus.len()
    }

    pub fn cpu_of(&self, shard: usize) -> Option<usize> {
        self.cpus.get(shard).copied().flatten()
    }

    /// Roles on `shard`.
    pub fn roles_on(&self, shard: usize) -> Vec<Role> {
        self.assignment
            .iter()
            .filter(|(_, s)| *s == shard)
            .map(|(r, _)| *r)
            .collect()
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for shard in 0..self.shards() {
            let roles: Vec<_> = self.roles_on(shard).iter().map(|r| r.name()).collect();
            let cpu = self
                .cpu_of(shard)
                .map_or("unpinned".to_string(), |c| format!("cpu {c}"));
            writeln!(
                f,
                "shard {shard} ({cpu}): {}",
                if roles.is_empty() {
                    "-".into()
                } else {
                    roles.join(", ")
                }
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compact_spread_and_custom_plans() {
        let c = Placement::compact();
        assert_eq!(c.shards(), 1);
        assert!(Role::ALL.iter().all(|r| c.shard_of(*r) == 0));
        let s = Placement::spread(Some(2));
        assert_eq!(s.shards(), 5);
        assert_eq!(s.cpu_of(4), Some(6));
        let p = Placement::parse("network=0,mempool=0,leader=1,voter=1,verify=2").unwrap();
        assert_eq!(p.shards(), 3);
        assert_eq!(p.roles_on(1), vec![Role::Leader, Role::Voter]);
        assert!(p.to_string().contains("shard 2 (unpinned): verify"));
        assert_eq!(
            Placement::parse("network=0"),
            Err(PlacementError::Missing("mempool"))
        );
        assert!(matches!(
            Placement::parse("nonsense"),
            Err(PlacementError::Unknown(_))
        ));
    }
}
