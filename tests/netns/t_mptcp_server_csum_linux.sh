#!/usr/bin/env bash
# t_mptcp_server with net.mptcp.checksum_enabled=1 on the Linux server.
CHECKSUM=1 exec bash "$(dirname "$0")/t_mptcp_server.sh"
