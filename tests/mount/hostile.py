"""A hostile or broken "HubSpot" for the security tests: an HTTP server on
127.0.0.1 (port 0) that stands between hubfs and the sandbox. Every request
is recorded; a test's `override(req)` may answer it (return (status, body)
or (status, body, content_type)), else it is passed to the sandbox as it is.

Also `Listener`: a TCP port that records what connects to it (a proxy, or a
server the token must never reach) and answers nothing useful.
"""
import http.server
import json
import socket
import socketserver
import threading
import urllib.error
import urllib.request


class Req:
    def __init__(self, method, path, headers, body):
        self.method = method
        self.path = path
        self.headers = headers
        self.body = body

    @property
    def route(self):
        return self.path.split("?", 1)[0]

    def json(self):
        return json.loads(self.body or b"null")


class Hostile:
    def __init__(self, upstream, override=None, auth=None):
        """auth: the bearer token to forward with, in place of hubfs's."""
        self.upstream = upstream.rstrip("/")
        self.auth = auth
        self.override = override or (lambda req: None)
        self.requests = []
        self.lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                pass

            def _any(self):
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else b""
                req = Req(self.command, self.path, dict(self.headers), body)
                with outer.lock:
                    outer.requests.append(req)
                ans = outer.override(req)
                if ans is None:
                    ans = outer._forward(req)
                status, data = ans[0], ans[1]
                ctype = ans[2] if len(ans) > 2 else "application/json"
                if isinstance(data, (dict, list)):
                    data = json.dumps(data).encode()
                elif isinstance(data, str):
                    data = data.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _any

        class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
            daemon_threads = True
            allow_reuse_address = True

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d" % self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def _forward(self, req):
        headers = {k: v for k, v in req.headers.items()
                   if k.lower() in ("authorization", "content-type", "accept")}
        if self.auth and any(k.lower() == "authorization" for k in headers):
            headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            headers["Authorization"] = "Bearer " + self.auth
        r = urllib.request.Request(self.upstream + req.path, data=req.body or None,
                                   headers=headers, method=req.method)
        try:
            with urllib.request.urlopen(r, timeout=60) as resp:
                return resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            return e.code, e.read(), e.headers.get("Content-Type", "")

    def forward_json(self, req, drop_after=False):
        """The sandbox's answer to req, parsed; drop_after: without the
        `after` query parameter (a cursor the sandbox never handed out)."""
        if drop_after and "?" in req.path:
            route, q = req.path.split("?", 1)
            q = "&".join(p for p in q.split("&") if not p.startswith("after="))
            req = Req(req.method, route + ("?" + q if q else ""), req.headers, req.body)
        status, body, _ = self._forward(req)
        return status, json.loads(body or b"null")

    def count(self, pred):
        with self.lock:
            return sum(1 for r in self.requests if pred(r))

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class Listener:
    """Accepts connections on 127.0.0.1 and records the bytes each sends
    (up to 64 KiB within 2 s), then closes it."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.url = "http://127.0.0.1:%d" % self.port
        self.received = []
        self.lock = threading.Lock()
        self.stopping = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stopping:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(c,), daemon=True).start()

    def _serve(self, c):
        data = b""
        c.settimeout(2)
        try:
            while len(data) < 65536:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
                if b"\r\n\r\n" in data:
                    c.sendall(b"HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n"
                              b"Connection: close\r\n\r\n")
                    break
        except OSError:
            pass
        finally:
            c.close()
        with self.lock:
            self.received.append(data)

    def data(self):
        with self.lock:
            return b"".join(self.received)

    def connections(self):
        with self.lock:
            return len(self.received)

    def stop(self):
        self.stopping = True
        self.sock.close()
