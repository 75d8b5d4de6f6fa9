//! Streaming a dataset larger than the disk (DESIGN §11): the pieces under
//! `producers::StreamingProducer`.
//!
//! - `order`: the node-partitioned block order (blocks dealt to nodes, records mixed
//!   within windows of blocks, ranks interleaved), a pure function with per-block
//!   arrays only;
//! - `node_cache`: the node's bounded block cache shared by its ranks (processes):
//!   fetch once under a lock, a hard disk limit counting every file, eviction by the
//!   known future (Belady), no block removed under a reader.

pub mod node_cache;
pub mod order;

pub use node_cache::{minimum_limit, NodeCache};
pub use order::{BlockTable, Layout, StreamOrder, WINDOW_BLOCKS};
