#!/usr/bin/env bash
# t_mptcp_mpfail_server with the Linux server asking for DSS checksums
# (net.mptcp.checksum_enabled=1), not mptun.
CHECKSUM_BY=linux exec bash "$(dirname "$0")/t_mptcp_mpfail_server.sh"
