#!/usr/bin/env python3
"""A small HTTP server for the gateway tests: GET /NAME serves a file from
--dir; PUT (any path) reads the body and answers with its length and SHA-256
as one JSON line. Binds ADDR PORT (IPv4 or IPv6)."""
import argparse
import hashlib
import http.server
import json
import os
import socket


class Handler(http.server.SimpleHTTPRequestHandler):
    def do_PUT(self):
        left = int(self.headers.get("Content-Length", "0"))
        h = hashlib.sha256()
        n = 0
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            h.update(chunk)
            n += len(chunk)
            left -= len(chunk)
        body = (json.dumps({"bytes": n, "sha256": h.hexdigest()}) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("addr")
    p.add_argument("port", type=int)
    p.add_argument("--dir", required=True)
    args = p.parse_args()
    os.chdir(args.dir)

    class Server(http.server.ThreadingHTTPServer):
        address_family = socket.AF_INET6 if ":" in args.addr else socket.AF_INET

    Server((args.addr, args.port), Handler).serve_forever()


if __name__ == "__main__":
    main()
