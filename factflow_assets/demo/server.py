"""A small website served from memory on 127.0.0.1, for the demo, the tests and the benchmarks.

Each path maps to a `Resource` (or a function returning one, for behaviour that changes per
request: a 429 then a 200, a redirect loop, a slow trickle). `{{base_url}}` in a body becomes the
server's own address, so sitemaps can point at the server whatever port it got. The server
counts requests per path, which lets tests prove that a replay fetched nothing.
"""

from __future__ import annotations

import gzip
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

BASE_URL_PLACEHOLDER = b"{{base_url}}"


@dataclass
class Resource:
    body: bytes = b""
    content_type: str = "text/html; charset=utf-8"
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering
    gzip_body: bool = False  # compress after {{base_url}} substitution (a .gz sitemap)
    chunks: list[tuple[bytes, float]] | None = None  # (bytes, pause) pieces for a trickling answer


Handler = Callable[["Request"], Resource]


@dataclass(frozen=True)
class Request:
    path: str  # with the query string
    headers: dict[str, str]
    count: int  # how many times this path was requested, this one included
    method: str = "GET"
    body: bytes = b""  # a POST's (a webhook receiver's)


NOT_FOUND = Resource(b"<html><head><title>Not found</title></head><body><h1>404</h1></body></html>", status=404)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A client that went away mid-answer (a killed crawler, a timeout) is not the server's
        error; anything else is still printed."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class SiteServer:
    """`with SiteServer(routes) as site: httpx.get(site.url("/"))`"""

    def __init__(self, routes: dict[str, Resource | Handler] | None = None, latency: float = 0.0):
        self.routes: dict[str, Resource | Handler] = dict(routes or {})
        self.latency = latency
        self.requests: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the site server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host.decode() if isinstance(host, bytes) else host}:{port}"

    def url(self, path: str) -> str:
        return self.base_url + path

    def total_requests(self) -> int:
        with self._lock:
            return sum(self.requests.values())

    def start(self) -> SiteServer:
        server = self

        class _Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self):  # noqa: N802 (http.server's naming)
                server._answer(self)

            def do_POST(self):  # noqa: N802
                server._answer(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            def log_message(self, *args):  # keep test and demo output clean
                pass

        self._httpd = _QuietServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="site-server", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> SiteServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answer(self, handler: BaseHTTPRequestHandler, posted: bytes | None = None) -> None:
        with self._lock:
            self.requests[handler.path] += 1
            count = self.requests[handler.path]
        route = self.routes.get(handler.path) or self.routes.get(urlsplit(handler.path).path) or NOT_FOUND
        request = Request(handler.path, dict(handler.headers), count, "GET" if posted is None else "POST", posted or b"")
        resource = route(request) if callable(route) else route
        base_url = self.base_url  # before the delay: the server may be stopped by the time it ends
        delay = self.latency + resource.delay
        if delay:
            time.sleep(delay)
        body = resource.body.replace(BASE_URL_PLACEHOLDER, base_url.encode())
        if resource.gzip_body:
            body = gzip.compress(body, mtime=0)
        try:
            handler.send_response(resource.status)
            handler.send_header("Content-Type", resource.content_type)
            for name, value in resource.headers.items():
                handler.send_header(name, value)
            if resource.chunks is None:
                handler.send_header("Content-Length", str(len(body)))
                handler.end_headers()
                handler.wfile.write(body)
            else:
                handler.send_header("Connection", "close")
                handler.end_headers()
                for piece, pause in resource.chunks:
                    handler.wfile.write(piece)
                    handler.wfile.flush()
                    time.sleep(pause)
                handler.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout or size cap under test)
