#!/usr/bin/env python3
"""Demo backend for `make run`: answers every request with
"hello from backend <port>\n" (HTTP/1.1 keep-alive). Standard library only.

    contrib/demo_backend.py 8081
"""
import http.server
import socketserver
import sys


class Hello(http.server.BaseHTTPRequestHandler):
    # Headers and body go out in two writes: without TCP_NODELAY the body
    # waits for the proxy's delayed ACK (40 ms per keep-alive request).
    disable_nagle_algorithm = True
    protocol_version = "HTTP/1.1"
    timeout = 60

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        if length:
            self.rfile.read(length)
        body = f"hello from backend {self.server.server_address[1]}\n".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _answer

    def log_message(self, fmt, *args):
        pass


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


if __name__ == "__main__":
    port = int(sys.argv[1])
    with Server(("127.0.0.1", port), Hello) as srv:
        try:
            srv.serve_forever()
        except KeyboardInterrupt:
            pass
