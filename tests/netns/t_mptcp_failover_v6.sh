#!/usr/bin/env bash
# t_mptcp_failover over IPv6: the initial subflow fd01::1 -> fd10:1::2 dies, the
# join from PEER's endpoint fd02::1 (path 2) finishes the echo (see
# t_mptcp_failover.sh).
NETNS_TEST_NAME=t_mptcp_failover_v6 FAMILY=6 exec bash "$(dirname "$0")/t_mptcp_failover.sh"
