//! The limits a running stack can be given anew (a daemon's reload): what
//! it admits from now on, never a reason to drop what it holds.

use super::Stack;

/// The admission limits of [`Config`](crate::Config) that may change while
/// connections live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeLimits {
    /// `Config::max_connections`.
    pub max_connections: usize,
    /// `Config::max_conns_per_source`.
    pub max_conns_per_source: usize,
    /// `Config::max_memory`.
    pub max_memory: usize,
    /// `MptcpConfig::max_subflows`.
    pub max_subflows: usize,
    /// `MptcpConfig::max_add_addr_accepted`.
    pub max_add_addr_accepted: usize,
}

impl Stack {
    /// The limits in force.
    pub fn limits(&self) -> RuntimeLimits {
        RuntimeLimits {
            max_connections: self.config.max_connections,
            max_conns_per_source: self.config.max_conns_per_source,
            max_memory: self.config.max_memory,
            max_subflows: self.config.mptcp.max_subflows,
            max_add_addr_accepted: self.config.mptcp.max_add_addr_accepted,
        }
    }

    /// New limits, for every connection as Linux's pernet MPTCP limits are:
    /// admission, joins and announcements are checked against them from now
    /// on. A lower limit refuses new connections, subflows and ADD_ADDRs
    /// past it; what already exists stays. A smaller memory budget takes
    /// effect as pressure (buffers stop growing, then new connections are
    /// refused), never as a drop.
    /// How connections opened from now on fill their segments' checksums
    /// (`TcpConfig::tx_checksum`): the driver knows whether its device
    /// completes them.
    pub fn set_tx_checksum(&mut self, c: crate::wire::TxChecksum) {
        self.config.tcp.tx_checksum = c;
    }

    pub fn set_limits(&mut self, l: RuntimeLimits) {
        self.config.max_connections = l.max_connections;
        self.config.max_conns_per_source = l.max_conns_per_source;
        self.config.mptcp.max_subflows = l.max_subflows;
        self.config.mptcp.max_add_addr_accepted = l.max_add_addr_accepted;
        for (_, slot) in self.conns.iter_mut() {
            slot.conn.set_max_subflows(l.max_subflows);
        }
        if self.config.max_memory != l.max_memory {
            self.config.max_memory = l.max_memory;
            self.update_pressure();
        }
    }
}
