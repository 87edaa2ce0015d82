#!/usr/bin/env python3
"""A plain Linux TCP (or MPTCP) echo server for the interop tests.

Listens on ADDR PORT; every connection gets back every byte it sends; when the
client half-closes, the server closes after echoing the rest. With --quit, a line
"QUIT\r\n" that ends what has arrived so far is echoed and then the server closes
its side first, as an FTP server does, and reads until the client closes. One thread
per connection. Runs until killed.
Writes "ready" to --ready-file once listening.
"""
import argparse
import ipaddress
import socket
import sys
import threading

IPPROTO_MPTCP = 262


def serve(conn, quit_line):
    try:
        with conn:
            tail = b""
            while True:
                data = conn.recv(256 * 1024)
                if not data:
                    break
                conn.sendall(data)
                tail = (tail + data)[-7:]
                if quit_line and tail == b"\nQUIT\r\n":
                    conn.shutdown(socket.SHUT_WR)
                    while conn.recv(256 * 1024):
                        pass
                    return
            conn.shutdown(socket.SHUT_WR)
    except OSError as e:
        print(f"echoserver: {e}", file=sys.stderr)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--mptcp", action="store_true")
    p.add_argument("--ready-file")
    p.add_argument("--quit", action="store_true", help="close first after a QUIT line")
    a = p.parse_args()
    fam = socket.AF_INET6 if ipaddress.ip_address(a.addr).version == 6 else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM, IPPROTO_MPTCP if a.mptcp else 0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((a.addr, a.port))
    # Bursts of 1,000 connects (t_time_wait) must not overflow the accept
    # queue while the loop catches up (the kernel caps it at somaxconn).
    s.listen(4096)
    if a.ready_file:
        with open(a.ready_file, "w") as f:
            f.write("ready\n")
    while True:
        conn, _ = s.accept()
        threading.Thread(target=serve, args=(conn, a.quit), daemon=True).start()


if __name__ == "__main__":
    sys.exit(main())
