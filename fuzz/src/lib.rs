//! Shared parts of the fuzz targets (see docs/FUZZING.md).
//!
//! The simulation harness of the engine's own tests is compiled in here
//! unchanged (`#[path]`), so the fuzz targets use the same payload generator,
//! address plan and packet rewriting as `stack/tests/`; nothing is copied.

#[path = "../../stack/tests/sim/mod.rs"]
pub mod sim;

#[path = "../../stack/tests/packet/mod.rs"]
pub mod packet;
