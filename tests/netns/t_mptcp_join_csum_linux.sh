#!/usr/bin/env bash
# t_mptcp_join with net.mptcp.checksum_enabled=1 in PEER: DSS checksums on both
# subflows, asked by Linux (MPTCP_INFO's csum_enabled must say so).
# (see t_mptcp_join.sh)
NETNS_TEST_NAME=t_mptcp_join_csum_linux CHECKSUM=1 exec bash "$(dirname "$0")/t_mptcp_join.sh"
