#!/usr/bin/env python3
"""Test TCP server for the nft e2e tests: on every port given, dual-stack ([::], v4-mapped),
greets each connection with "ok\n", then echoes lines until the peer closes."""
import socket
import socketserver
import sys
import threading


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        try:
            self.wfile.write(b"ok\n")
            for line in self.rfile:
                self.wfile.write(line)
        except OSError:
            pass


class Server(socketserver.ThreadingTCPServer):
    address_family = socket.AF_INET6
    allow_reuse_address = True
    daemon_threads = True
    request_queue_size = 256

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def main():
    servers = [Server(("::", int(p)), Handler) for p in sys.argv[1:]]
    for s in servers[1:]:
        threading.Thread(target=s.serve_forever, daemon=True).start()
    servers[0].serve_forever()


if __name__ == "__main__":
    main()
