#!/usr/bin/env bash
# t_threads with every packet read on the wrong queue on purpose (--debug-misroute).
MISROUTE=1 exec "$(dirname "$0")/t_threads.sh"
