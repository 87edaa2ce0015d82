#!/usr/bin/env bash
# t_mptcp_client_join with MODE=subflow: mptun (--local-forward client) opens its
# own second subflow from `--addr 10.10.2.2,subflow` to the Linux MPTCP server.
NETNS_TEST_NAME=t_mptcp_client_subflow MODE=subflow exec bash "$(dirname "$0")/t_mptcp_client_join.sh"
