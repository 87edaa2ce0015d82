#!/usr/bin/env bash
# t_mptcp_join over IPv6: the initial subflow fd01::1 -> fd10:1::2, the join from
# PEER's endpoint fd02::1 (path 2).
# KNOWN_FAILING: intermittent mptun bugs (about half the runs): data sent beyond Linux's connection-level window is never retransmitted at the data level (stall, PEER MPTcpExtNoDSSInWindow > 0); repeated MP_CAPABLE data-level lengths mapped from the wrong SSN (stall, or fallback with two subflows and a busy loop)
# (see t_mptcp_join.sh)
NETNS_TEST_NAME=t_mptcp_join_v6 FAMILY=6 exec bash "$(dirname "$0")/t_mptcp_join.sh"
