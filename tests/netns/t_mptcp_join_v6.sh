#!/usr/bin/env bash
# t_mptcp_join over IPv6: the initial subflow fd01::1 -> fd10:1::2, the join from
# PEER's endpoint fd02::1 (path 2).
# (see t_mptcp_join.sh)
NETNS_TEST_NAME=t_mptcp_join_v6 FAMILY=6 exec bash "$(dirname "$0")/t_mptcp_join.sh"
