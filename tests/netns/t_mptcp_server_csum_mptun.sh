#!/usr/bin/env bash
# t_mptcp_server with mptun asking for DSS checksums (--checksum).
MPTUN_EXTRA=--checksum exec bash "$(dirname "$0")/t_mptcp_server.sh"
