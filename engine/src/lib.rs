//! The olympus node engine.
//!
//! [`driver`] carries out a protocol's actions against the outside world (runtime
//! independent: the glommio runner feeds it inputs and drains its outputs), and
//! [`placement`] maps a node's roles onto shards.

pub mod driver;
pub mod placement;
