#!/usr/bin/env bash
# t_mptcp_client with net.mptcp.checksum_enabled=1 on Linux: DSS checksums on both ways.
CHECKSUM=1 exec bash "$(dirname "$0")/t_mptcp_client.sh"
