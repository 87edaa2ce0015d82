#!/usr/bin/env python3
"""Bookkeeping of t_mptcp_blind_inject.sh: what the test knows about one class's
connection (files in its directory W) turned into a verdict.

  blind_check.py ready MPTUN CTL SCEN NSUB PID W
      wait (while PID runs, at most 30 s) until mptun has the scenario's new
      connection (not in W/status_pre.json) ESTABLISHED with NSUB established
      subflows; write W/status_before.json, W/conn_before.json and W/flows (the
      subflows' 4-tuples as the attacker's flows, "remote-local" each). Exit 1 if not.
  blind_check.py broken W SCEN NSUB
      right after the flood: exit 0 and print why if the connection is already
      broken (gone from mptun's status, fallen back on either side, or Linux has
      lost its MPTCP socket), 1 otherwise.
  blind_check.py verdict W SCEN CLASS NSUB RC TOTAL SETUP
      print "PASS|FAIL SCEN/CLASS: problems | evidence".
  blind_check.py tshark DIR
      summarize DIR/atk.txt (tshark fields of the attacker's captured packets)
      against what the injector said it sent (DIR/*/inject.json); exit 1 on a
      bad checksum, a packet malformed at the IP/TCP/MPTCP level, or counts that
      differ (beyond what tcpdump says it lost).

W holds: client.json/.err (tcpclient.py), server.json (mpserver.py's line, fwd),
conn_before.json, status_{pre,before,after,end}.json (mptun), ss_after.txt (PEER's
`ss -tniM` after the flood), nstat_{before,end} (PEER's `nstat -az`),
fwd_{before,after} (HOST's nftables counter of packets from the attacker into the
TUN), inject.json (blind_inject.py), overlap ("yes": the flood ended before the
transfer did).
"""
import collections
import glob
import json
import os
import re
import subprocess
import sys
import time

# PEER counters that no injected segment may move: lib.sh's MP_PEER_ZERO (passed
# as BLIND_PEER_ZERO; every
# fallback, MP_FAIL, infinite mapping, DSS mismatch, checksum error, join failure,
# MP_FASTCLOSE and MP_RST received), and RmAddr / MPPrioRx (mptun never removes an
# address or changes a priority here).
PEER_ZERO = os.environ.get("BLIND_PEER_ZERO", "").split() + ["MPTcpExtRmAddr", "MPTcpExtMPPrioRx"]


def load(w, name, default=None):
    try:
        with open(os.path.join(w, name)) as f:
            return json.load(f)
    except (OSError, ValueError):
        return default


def text(w, name):
    try:
        with open(os.path.join(w, name)) as f:
            return f.read()
    except OSError:
        return ""


def nstat(w, name):
    out = {}
    for line in text(w, name).splitlines():
        p = line.split()
        if len(p) >= 2 and p[1].isdigit():
            out[p[0]] = int(p[1])
    return out


def mine(scen, c):
    if scen.startswith("echo"):
        return c["local"] == "10.10.1.2:7"
    return c["remote"] == "10.1.0.1:5000"


def ready(mptun, ctl, scen, nsub, pid, w):
    nsub, pid = int(nsub), int(pid)
    old = {c["id"] for c in (load(w, "status_pre.json") or {}).get("connections", [])}
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except OSError:
            break
        r = subprocess.run([mptun, "status", "--control", ctl, "--json"], capture_output=True, text=True)
        if r.returncode == 0:
            st = json.loads(r.stdout)
            for c in st["connections"]:
                subs = c["subflows"]
                if (mine(scen, c) and c["id"] not in old and c["state"].upper() == "ESTABLISHED"
                        and len(subs) == nsub and all(s["state"] == "ESTABLISHED" for s in subs)):
                    for name, v in (("status_before.json", st), ("conn_before.json", c)):
                        with open(os.path.join(w, name), "w") as f:
                            json.dump(v, f)
                    with open(os.path.join(w, "flows"), "w") as f:
                        f.write(" ".join(s["remote"] + "-" + s["local"] for s in subs) + "\n")
                    return 0
        time.sleep(0.05)
    return 1


def linux_view(w):
    """Linux's MPTCP socket of the connection in PEER's `ss -tniM` after the flood:
    (state, fell back, established subflows), or None when there is none."""
    before = load(w, "conn_before.json")
    s0 = before["subflows"][0]
    ends = {s0["remote"], s0["local"]}  # Linux's and mptun's end of the initial subflow
    lines = text(w, "ss_after.txt").splitlines()
    for i, line in enumerate(lines):
        f = line.split()
        if f and f[0] == "mptcp" and ends <= set(f):
            detail = lines[i + 1] if i + 1 < len(lines) else ""
            m = re.search(r"\btoken:(\w+)", detail)
            # Each subflow's line names the connection's token: token:<own>(id)/<msk>(id).
            alive = sum(1 for x in lines if m and f"/{m.group(1)}(" in x)
            return f[1], "fallback" in detail.split(), alive
    return None


def mptun_after(w):
    before = load(w, "conn_before.json")
    for c in (load(w, "status_after.json") or {}).get("connections", []):
        if c["id"] == before["id"]:
            return c
    return None


def subflow_key(c):
    return sorted((s["local"], s["remote"], s["state"], s["backup"]) for s in c["subflows"])


def after_flood(w, nsub):
    """Problems visible right after the flood: mptun's connection and Linux's socket."""
    bad = []
    before, after = load(w, "conn_before.json"), mptun_after(w)
    if after is None:
        bad.append("mptun: the connection is gone after the flood")
    else:
        if after["state"].upper() != "ESTABLISHED":
            bad.append(f"mptun: connection {after['state']} after the flood")
        mp = after.get("mptcp") or {}
        if not after.get("mptcp") or mp.get("fallback"):
            bad.append(f"mptun: connection fell back ({mp.get('fallback_reason')})")
        if subflow_key(after) != subflow_key(before):
            bad.append(f"mptun: subflows (local, remote, state, backup) {subflow_key(before)} became {subflow_key(after)}")
    lv = linux_view(w)
    if lv is None:
        bad.append("Linux: no MPTCP socket for the connection after the flood (ss -M)")
    else:
        state, fallback, alive = lv
        if fallback:
            bad.append("Linux: the socket fell back after the flood (ss -M)")
        if alive != nsub:
            bad.append(f"Linux: {alive} subflows after the flood (ss -M), expected {nsub}")
    return bad


def broken(w, scen, nsub):
    bad = [b for b in after_flood(w, int(nsub)) if "gone" in b or "fell back" in b or "no MPTCP socket" in b]
    if bad:
        print("; ".join(bad))
        return 0
    return 1


def verdict(w, scen, cls, nsub, rc, total, setup):
    nsub, rc, total = int(nsub), int(rc), int(total)
    bad, ev = [], []
    if setup:
        bad.append("setup: " + setup)
    if not os.environ.get("BLIND_PEER_ZERO"):
        bad.append("BLIND_PEER_ZERO (lib.sh's MP_PEER_ZERO) not in the environment")
    client = load(w, "client.json", {}) or {}
    if rc != 0 or not client.get("ok"):
        why = client.get("errors") or client.get("error") or text(w, "client.err").strip()[-300:]
        bad.append(f"transfer failed (exit {rc}): {why}")
    elif client.get("bytes") != total:
        bad.append(f"transfer moved {client.get('bytes')} bytes, not {total}")
    if scen.startswith("echo") and client.get("ok") is not None:
        info = client.get("mptcp_info_end")
        if not info:
            bad.append("Linux: no MPTCP_INFO at the end")
        else:
            if info["fallback"]:
                bad.append("Linux: MPTCP_INFO says fallback")
        # Subflows are counted before our half-close: once the close begins,
        # a sample may catch a subflow already closing with the connection.
        written = client.get("mptcp_info_written")
        if not written:
            bad.append("Linux: no MPTCP_INFO when the last byte was written")
        elif written["subflows_total"] != nsub:
            bad.append(f"Linux: MPTCP_INFO {written['subflows_total']} subflows after the last write, expected {nsub}")
        if client.get("mptcp_max_subflows_total") not in (None, nsub):
            bad.append(f"Linux: MPTCP_INFO up to {client['mptcp_max_subflows_total']} subflows, expected {nsub}")
    if scen == "fwd" and not setup:
        server = load(w, "server.json")
        if not server:
            bad.append("Linux server: no line for the connection (it never ended)")
        else:
            info = server["mptcp_info"] or {}
            if server["fallback"] or info.get("fallback", True):
                bad.append(f"Linux server: MPTCP_INFO says fallback ({info or 'none'})")
            if server["max_subflows_total"] != nsub or info.get("subflows_total") != nsub:
                bad.append(f"Linux server: MPTCP_INFO subflows max {server['max_subflows_total']}, "
                           f"last {info.get('subflows_total')}, expected {nsub}")
            if server["bytes"] != total:
                bad.append(f"Linux server echoed {server['bytes']} of {total} bytes")
            elif server["sha256"] != client.get("sha256"):
                bad.append("Linux server echoed other bytes than the client sent (SHA-256)")
    if not setup:
        bad += after_flood(w, nsub)
        n0, n1 = nstat(w, "nstat_before"), nstat(w, "nstat_end")
        moved = {k.replace("MPTcpExt", ""): n1.get(k, 0) - n0.get(k, 0) for k in PEER_ZERO}
        moved = {k: v for k, v in moved.items() if v}
        if moved:
            bad.append(f"PEER nstat moved: {moved}")
        inj = load(w, "inject.json", {}) or {}
        fwd = int(text(w, "fwd_after") or 0) - int(text(w, "fwd_before") or 0)
        ev.append(f"sent {inj.get('sent')} in {inj.get('seconds')} s (all during the transfer: "
                  f"{text(w, 'overlap').strip() or '?'}), {fwd} forwarded into the TUN")
        if fwd < 1:
            bad.append("no injected packet was forwarded into the TUN")
        lv = linux_view(w)
        if lv:
            ev.append(f"Linux after the flood: {lv[0]}, {lv[2]} subflows{', fallback' if lv[1] else ''}")
        linux = {k: n1.get("MPTcpExt" + k, 0) - n0.get("MPTcpExt" + k, 0) for k in ("NoDSSInWindow", "MPTCPRetrans")}
        ev.append("PEER: " + (" ".join(f"{k}+{v}" for k, v in linux.items() if v) or "-"))
        c0 = (load(w, "status_before.json") or {}).get("counters", {})
        c1 = (load(w, "status_end.json") or {}).get("counters", {})
        dc = {k: c1.get(k, 0) - c0.get(k, 0) for k in c1}
        for k in ("drop_bad_checksum", "drop_malformed", "drop_invalid_option"):
            if dc.get(k):
                bad.append(f"mptun dropped injected packets before TCP: {k} +{dc[k]}")
        shown = ("drop_out_of_window", "drop_paws", "challenge_acks", "resets_received", "resets_sent",
                 "mptcp_fallbacks", "mptcp_rm_addr_rx", "mptcp_mp_fail_rx", "mptcp_mp_prio_rx",
                 "mptcp_infinite_map_rx", "mptcp_infinite_map_tx", "mptcp_add_addr_rx",
                 "mptcp_add_addr_hmac_failures", "mptcp_data_retransmits", "mptcp_reinjected_bytes")
        ev.append("mptun (all connections): " + (" ".join(f"{k}+{dc[k]}" for k in shown if dc.get(k)) or "-"))
    head = ("FAIL" if bad else "PASS") + f" {scen}/{cls}: "
    print(head + ("; ".join(bad) + " | " if bad else "") + "; ".join(ev))
    return 0


SUBTYPE = {"rm_addr": 4, "mp_fail": 6, "data_ack": 2, "dss_map": 2, "dss_infinite": 2, "data_fin": 2,
           "mp_prio": 5, "mp_tcprst": 8, "fastclose": 7, "add_addr": 3}
NAMES = {2: "DSS", 3: "ADD_ADDR", 4: "REMOVE_ADDR", 5: "MP_PRIO", 6: "MP_FAIL", 7: "MP_FASTCLOSE", 8: "MP_TCPRST"}


def tshark(d):
    sub, bad_csum, malformed, rst, n, what = collections.Counter(), 0, 0, 0, 0, []
    for line in text(d, "atk.txt").splitlines():
        f = line.split("\t") + [""] * 7
        n += 1
        for s in filter(None, f[0].split(",")):
            sub[int(s, 0)] += 1
        bad_csum += f[1] != "1"
        # Malformed in IP, TCP or MPTCP only: the random payload may look like
        # whatever protocol is registered for a port, and be malformed as that.
        bad = bool(f[2]) and set(f[6].split(":")) <= {"eth", "ethertype", "ip", "tcp", "mptcp"}
        malformed += bad
        rst += f[3] in ("1", "True")
        if (f[1] != "1" or bad) and len(what) < 3:
            what.append(f"frame {f[4]}: {f[5]}")
    want, want_rst = collections.Counter(), 0
    for path in glob.glob(os.path.join(d, "*", "inject.json")):
        j = json.load(open(path))
        if j["class"] in SUBTYPE:
            want[SUBTYPE[j["class"]]] += j["sent"]
        want_rst += {"rst": j["sent"], "mp_tcprst": j["sent"], "fastclose": j["sent"] // 2}.get(j["class"], 0)
    m = re.search(r"(\d+) packets dropped by kernel", text(d, "tcpdump.err"))
    lost = int(m.group(1)) if m else -1

    def fmt(c):
        return " ".join(f"{NAMES.get(k, k)}={v}" for k, v in sorted(c.items()))

    print(f"{n} packets captured ({lost} lost by tcpdump), RST {rst}, MPTCP options: {fmt(sub)}, "
          f"bad TCP checksum {bad_csum}, malformed {malformed} {what}; sent: RST {want_rst}, {fmt(want)}")
    ok = n > 0 and not bad_csum and not malformed
    if lost == 0:
        ok = ok and sub == want and rst == want_rst
    else:
        # A packet tcpdump lost is missing once from each tally it belongs
        # to: an MP_TCPRST or MP_FASTCLOSE RST from both the options and the
        # RSTs.
        short_opts = sum(want.values()) - sum(sub.values())
        short_rst = want_rst - rst
        ok = (ok and all(sub[k] <= want[k] for k in sub) and rst <= want_rst
              and short_opts <= max(lost, 0) and short_rst <= max(lost, 0))
    return 0 if ok else 1


def main():
    cmd, args = sys.argv[1], sys.argv[2:]
    return {"ready": ready, "broken": broken, "verdict": verdict, "tshark": tshark}[cmd](*args)


if __name__ == "__main__":
    sys.exit(main())
