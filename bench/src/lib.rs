//! What the benchmark's two binaries share: the comparison write modes,
//! which reach studysync's write path through its one seam for them, the
//! writer's event sink (`studysync::write::sink`). The production build has
//! no code of theirs.
pub mod sinks;

pub use sinks::WriteMode;
