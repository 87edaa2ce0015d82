#!/usr/bin/env bash
# t_mptcp_mpfail_client with mptun asking for DSS checksums (--checksum), not Linux.
CHECKSUM_BY=mptun exec bash "$(dirname "$0")/t_mptcp_mpfail_client.sh"
