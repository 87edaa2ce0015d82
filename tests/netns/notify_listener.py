#!/usr/bin/env python3
"""A stand-in for systemd's notification socket (sd_notify(3)).

    notify_listener.py ADDR LOG [--on-ready CMD]

Binds an AF_UNIX datagram socket at ADDR (a path, or @name in the abstract
namespace of the current network namespace), creates LOG.bound once bound
(holding CLOCK_MONOTONIC at that moment, in microseconds),
and appends one line per datagram to LOG: the seconds since binding and the
datagram's KEY=VALUE lines joined by '|'. With --on-ready, CMD (a shell
command) runs the moment READY=1 arrives, and a line `ON_READY rc=N` records
its exit status: what a unit ordered After= this one would see.
"""
import argparse
import socket
import subprocess
import time

ap = argparse.ArgumentParser()
ap.add_argument("addr")
ap.add_argument("log")
ap.add_argument("--on-ready")
a = ap.parse_args()

s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind("\0" + a.addr[1:] if a.addr.startswith("@") else a.addr)
t0 = time.monotonic()
with open(a.log + ".bound", "w") as f:
    f.write("%d\n" % int(t0 * 1e6))
with open(a.log, "a", buffering=1) as log:
    while True:
        msg = s.recv(4096).decode(errors="replace")
        log.write("%.3f %s\n" % (time.monotonic() - t0, "|".join(msg.strip("\n").split("\n"))))
        if a.on_ready and "READY=1" in msg.split("\n"):
            rc = subprocess.call(a.on_ready, shell=True)
            log.write("ON_READY rc=%d\n" % rc)
