"""A real HTTP(S) server on 127.0.0.1 for download tests, serving bytes from memory and
misbehaving on request (used by tests/test_fetch.py and the fault suite)."""
from __future__ import annotations

import base64
import http.server
import socket
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class HttpState:
    """What the test server serves and how it misbehaves; and what it saw.

    ``files`` maps a URL path to its body; ``actions`` maps a URL path to a list of actions,
    one used up per request (then "serve"): ``short`` (announce the whole body, send a third,
    hang up), ``reset`` (send a third of the body, then a TCP reset), ``redirect:<url>``,
    ``status:<code>``, ``sleep:<seconds>`` (answer nothing for that long, then hang up). ``auth`` ("user:password") makes every request without those
    credentials a 401.
    """

    files: dict[str, bytes] = field(default_factory=dict)
    actions: dict[str, list[str]] = field(default_factory=dict)
    auth: str | None = None
    requests: list[str] = field(default_factory=list)
    authorizations: list[str | None] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    base: str = ""

    def count(self, path: str | None = None) -> int:
        """Requests for ``path``, or all requests."""
        with self.lock:
            return len(self.requests) if path is None else self.requests.count(path)

    def serve_folder(self, folder: Path, prefix: str = "/") -> None:
        for p in Path(folder).iterdir():
            self.files[prefix + p.name] = p.read_bytes()


class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        state: HttpState = self.server.state  # type: ignore[attr-defined]
        with state.lock:
            state.requests.append(self.path)
            state.authorizations.append(self.headers.get("Authorization"))
            queue = state.actions.get(self.path)
            action = queue.pop(0) if queue else "serve"
        body = state.files.get(self.path)
        try:
            if state.auth is not None:
                expected = "Basic " + base64.b64encode(state.auth.encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_error(401)
                    return
            if action.startswith("status:"):
                self.send_error(int(action.split(":", 1)[1]))
            elif action.startswith("redirect:"):
                self.send_response(302)
                self.send_header("Location", action.split(":", 1)[1])
                self.send_header("Content-Length", "0")
                self.end_headers()
            elif action.startswith("sleep:"):
                time.sleep(float(action.split(":", 1)[1]))
                self.close_connection = True
            elif body is None:
                self.send_error(404)
            elif action in ("short", "reset"):
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))  # more than will come
                self.end_headers()
                self.wfile.write(body[: len(body) // 3])
                self.wfile.flush()
                if action == "reset":  # SO_LINGER 0: close() sends RST, not FIN
                    self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    self.connection.close()
                self.close_connection = True
            else:
                self.send_response(200)
                self.send_header("Content-Type", "text/csv")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass


def start_http(ssl_context=None) -> tuple[HttpState, Callable[[], None]]:
    """A ThreadingHTTPServer on 127.0.0.1 (TLS with ``ssl_context``); (state, stop)."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    scheme = "http"
    if ssl_context is not None:
        httpd.socket = ssl_context.wrap_socket(httpd.socket, server_side=True)
        scheme = "https"
    state = HttpState(base=f"{scheme}://127.0.0.1:{httpd.server_address[1]}/")
    httpd.state = state  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()

    def stop() -> None:
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)

    return state, stop
