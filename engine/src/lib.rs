//! The olympus node engine.
//!
//! - [`driver`] carries out a protocol's actions against the outside world (runtime
//!   independent: the runner feeds it inputs with `now` and drains its outputs);
//! - [`placement`] maps a node's roles onto shards;
//! - [`node`] is the glommio runner: the network, the mempool, the safety cell, client
//!   receipts and the main loop of one replica;
//! - [`wire`] is how messages and safety state become validated rkyv bytes;
//! - [`metrics`] is the process's metrics recorder (atomic counters, gauges and
//!   histograms; text, JSON and Prometheus dumps), [`meters`] what the node records.

pub mod dissem;
pub mod driver;
pub mod meters;
pub mod metrics;
pub mod node;
pub mod placement;
pub mod verify;
pub mod wire;
