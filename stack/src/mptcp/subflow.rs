//! What the MPTCP level keeps per subflow: the mappings of the bytes sent and
//! received on it, and how far its received mappings were verified. Subflow 0 is
//! the one MP_CAPABLE opened; the others were joined (MP_JOIN).

use super::mapping::Mappings;

/// Mappings remembered per subflow and direction: enough for a full 8 MiB window
/// of one-segment mappings.
pub(super) const MAX_MAPPINGS: usize = 8192;

#[derive(Debug, Clone)]
pub struct SubflowState {
    pub(super) tx_map: Mappings,
    pub(super) rx_map: Mappings,
    /// Set once the peer's first DSS arrived on this subflow (or, on the first
    /// subflow, its keys): from then on its data is expected to be mapped.
    pub(super) mapping_seen: bool,
    /// End of the last mapping whose checksum was verified: the rest of it may
    /// be taken without checking again.
    pub(super) verified_end: Option<u32>,
}

impl SubflowState {
    pub fn new() -> Self {
        SubflowState {
            tx_map: Mappings::new(MAX_MAPPINGS),
            rx_map: Mappings::new(MAX_MAPPINGS),
            mapping_seen: false,
            verified_end: None,
        }
    }
}

impl Default for SubflowState {
    fn default() -> Self {
        Self::new()
    }
}
