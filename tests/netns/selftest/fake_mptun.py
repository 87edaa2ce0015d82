#!/usr/bin/env python3
"""Harness self-check only: a stand-in for `mptun` built on the kernel's own TCP.

NOT a test of mptun. It puts the --addr addresses on HOST's lo, creates an idle TUN
device, serves --echo/--sink/--forward/--local-forward with OS sockets, runs tcpdump
for --pcap, answers `status [--json]` on the control socket with the JSON shape the
tests assume, and exits 0 on SIGTERM after deleting the TUN. Use it to check the
suite itself after changing lib.sh or a test:

    MPTUN=tests/netns/selftest/fake_mptun.py tests/netns/run.sh

Expected: every test passes except t_echo_loss (traffic to lo is not forwarded, so
the nftables loss rule drops nothing, which that test rightly rejects).
"""
import argparse, hashlib, json, os, signal, socket, struct, subprocess, sys, threading, time

def sh(*a): subprocess.run(a, check=False, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
conns = []; lock = threading.Lock(); services = []

def tcp_info(s):
    b = s.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 104)
    u = struct.unpack_from("19I", b, 8)
    return {"rtt_us": u[15], "cwnd": u[18]}

def fam(a): return socket.AF_INET6 if ":" in a else socket.AF_INET
def hp(a, p): return f"[{a}]:{p}" if ":" in a else f"{a}:{p}"

def listen(addr, port):
    s = socket.socket(fam(addr), socket.SOCK_STREAM); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, port)); s.listen(256); return s

def serve(svc, addr, port, handler):
    s = listen(addr, port)
    while True:
        c, peer = s.accept()
        rec = {"local": hp(addr, port), "remote": hp(peer[0], peer[1]), "state": "ESTABLISHED", "bytes_in": 0, "bytes_out": 0, "sock": c}
        with lock: conns.append(rec)
        threading.Thread(target=handler, args=(svc, rec), daemon=True).start()

def echo(svc, rec):
    c = rec["sock"]
    while (d := c.recv(1 << 18)):
        rec["bytes_in"] += len(d); c.sendall(d); rec["bytes_out"] += len(d); svc["bytes"] += len(d)
    c.shutdown(socket.SHUT_WR); c.close()
    with lock: conns.remove(rec)

def sink(svc, rec):
    c = rec["sock"]; h = hashlib.sha256()
    while (d := c.recv(1 << 18)):
        rec["bytes_in"] += len(d); h.update(d); svc["bytes"] += len(d)
    svc["sha256"] = h.hexdigest(); c.close()
    with lock: conns.remove(rec)

def pump(a, b):
    try:
        while (d := a.recv(1 << 16)): b.sendall(d)
        b.shutdown(socket.SHUT_WR)
    except OSError: pass

def relay(c, host, port, src=None):
    u = socket.create_connection((host, port), source_address=(src, 0) if src else None)
    t = threading.Thread(target=pump, args=(u, c), daemon=True); t.start(); pump(c, u); t.join(); c.close(); u.close()

def run(a):
    addrs = [x.split(",")[0] for x in a.addr]
    sh("ip", "tuntap", "add", "dev", a.tun, "mode", "tun"); sh("ip", "link", "set", a.tun, "up")
    for x in addrs: sh("ip", "addr", "add", x + ("/128" if ":" in x else "/32"), "dev", "lo", "nodad") if ":" in x else sh("ip", "addr", "add", x + "/32", "dev", "lo")
    time.sleep(0.3)
    tcpdump = subprocess.Popen(["tcpdump", "-i", "h1", "-U", "-w", a.pcap], stderr=subprocess.DEVNULL) if a.pcap else None
    for p in a.echo:
        svc = {"kind": "echo", "port": p, "bytes": 0}; services.append(svc)
        for x in addrs: threading.Thread(target=serve, args=(svc, x, p, echo), daemon=True).start()
    for p in a.sink:
        svc = {"kind": "sink", "port": p, "bytes": 0}; services.append(svc)
        for x in addrs: threading.Thread(target=serve, args=(svc, x, p, sink), daemon=True).start()
    for f in a.forward:
        port, be = f.split("="); h, bp = be.rsplit(":", 1); services.append({"kind": "forward", "port": int(port), "bytes": 0})
        def fw(addr=addrs[0], port=int(port), h=h, bp=int(bp)):
            s = listen(addr, port)
            while True:
                c, _ = s.accept(); threading.Thread(target=relay, args=(c, h, bp), daemon=True).start()
        threading.Thread(target=fw, daemon=True).start()
    for f in a.local_forward:
        l, r = f.split("="); lh, lp = l.rsplit(":", 1); rh, rp = r.rsplit(":", 1)
        def lf(lh=lh, lp=int(lp), rh=rh, rp=int(rp)):
            s = listen(lh, lp)
            while True:
                c, _ = s.accept(); threading.Thread(target=relay, args=(c, rh, rp, addrs[0]), daemon=True).start()
        threading.Thread(target=lf, daemon=True).start()
    ctl = socket.socket(socket.AF_UNIX); 
    if os.path.exists(a.control): os.unlink(a.control)
    ctl.bind(a.control); ctl.listen(8)
    def stop(*_):
        if tcpdump: tcpdump.terminate(); tcpdump.wait()
        sh("ip", "tuntap", "del", "dev", a.tun, "mode", "tun"); os.unlink(a.control); print("stopped", flush=True); os._exit(0)
    signal.signal(signal.SIGTERM, stop)
    print("fake mptun up", flush=True)
    while True:
        c, _ = ctl.accept()
        with lock:
            cs = [{**{k: v for k, v in r.items() if k != "sock"}, "subflows": [tcp_info(r["sock"])]} for r in conns]
        c.sendall(json.dumps({"tun": a.tun, "addrs": addrs, "services": services, "connections": cs}).encode()); c.close()

def status(a):
    s = socket.socket(socket.AF_UNIX); s.connect(a.control); d = b""
    while (x := s.recv(65536)): d += x
    if a.json: print(d.decode()); return
    j = json.loads(d)
    for c in j["connections"]: print(c["local"], c["remote"], c["state"], c["bytes_in"], c["bytes_out"])

p = argparse.ArgumentParser(); sp = p.add_subparsers(dest="cmd")
r = sp.add_parser("run")
for o in ("--tun", "--control", "--pcap", "--seed", "--mtu", "--txqueuelen"): r.add_argument(o)
for o in ("--addr", "--forward", "--local-forward", "--impair"): r.add_argument(o, action="append", default=[])
for o in ("--echo", "--sink"): r.add_argument(o, action="append", type=int, default=[])
st = sp.add_parser("status"); st.add_argument("--control"); st.add_argument("--json", action="store_true"); st.add_argument("--tun")
a = p.parse_args()
run(a) if a.cmd == "run" else status(a)
