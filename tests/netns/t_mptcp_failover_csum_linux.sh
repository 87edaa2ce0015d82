#!/usr/bin/env bash
# t_mptcp_failover with net.mptcp.checksum_enabled=1 in PEER: DSS checksums on
# both subflows, the reinjected data included (see t_mptcp_failover.sh).
NETNS_TEST_NAME=t_mptcp_failover_csum_linux CHECKSUM=1 exec bash "$(dirname "$0")/t_mptcp_failover.sh"
