"""``mynn serve-model``: MLflow's scoring API for a registered mynn model, strict about input.

``mlflow models serve`` converts JSON values to the model's float64 signature before the model
sees them, so ``true`` and ``"12"`` become pixels, and a model's refusal reaches the client
as MLflow's generic "unexpected error" with a stack trace naming local paths. This server
answers the same requests in the same shapes, with a reason a client can act on:

- ``GET /ping``: 200 when a model is loaded (503 before); ``GET /health``: 200 while the server
  runs; ``GET /version``: which model, and when its alias was last looked up.
- ``GET /``: a page to draw a digit on (tracking.draw_page), answered by ``POST /draw``: the
  drawing made into an MNIST record (mynn.drawing), its prediction and that 28x28 image.
- ``POST /invocations`` (``application/json``): rows of 784 raw pixels, as ``{"inputs": rows}``,
  ``{"instances": rows}``, ``{"dataframe_split": {"data": rows}}`` or
  ``{"dataframe_records": [{...784 values...}, ...]}``. Every value must be a JSON number (not a
  boolean, a string or null), finite, whole and in 0..255. The answer is
  ``{"predictions": [{"digit": d, "output_0": ..., "output_9": ...}, ...]}``, as MLflow gives it,
  plus ``"model_version"``.
- A bad request gets HTTP 400 ``{"error_code": "BAD_REQUEST", "message": "<the reason>"}``:
  no stack trace, no path.

The model is loaded from its weights file only (:meth:`mynn.network.Network.load`, checked
against the digest recorded at registration): no code from the model folder runs. With
``models:/NAME@ALIAS`` the server follows the alias (tracking.following): a promotion is served
within ``poll_seconds``, without a restart; every answer names its model version (the JSON's
``model_version`` and the header ``X-Model-Version``).
"""
from __future__ import annotations

import json
import math
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

from mynn.encoding import scale_inputs
from mynn.network import INPUT_NODES, Network
from tracking import store

MAX_BODY_BYTES = 64 << 20  # about 10,000 rows of 784 numbers as JSON
MAX_DRAWING_SIDE = 1024  # pixels of a drawing's side (the page sends 280x280)
OUTPUT_KEYS = [f"output_{i}" for i in range(10)]


class BadRequest(ValueError):
    """A request that cannot be answered with digits; the message says why."""


@dataclass(frozen=True)
class Served:
    """The network being served and what it is."""

    network: Network
    model_uri: str
    name: str | None = None
    version: str | None = None


class _Constant(str):
    """NaN, Infinity or -Infinity in a request: kept as a marker, refused where it stands."""


def parse_rows(body: bytes) -> np.ndarray:
    """The (n, 784) uint8 pixel rows of a JSON request body, or :class:`BadRequest` saying why."""
    try:
        request = json.loads(body, parse_constant=_Constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"the body is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise BadRequest("the body must be a JSON object with one of the keys "
                         "'inputs', 'instances', 'dataframe_split', 'dataframe_records'")
    keys = [k for k in ("inputs", "instances", "dataframe_split", "dataframe_records") if k in request]
    if len(keys) != 1:
        raise BadRequest("the body must have exactly one of the keys 'inputs', 'instances', "
                         f"'dataframe_split', 'dataframe_records' (got {sorted(request)[:5]})")
    key = keys[0]
    value = request[key]
    if key == "dataframe_split":
        if not isinstance(value, dict) or "data" not in value:
            raise BadRequest("'dataframe_split' must be an object with 'data': a list of rows")
        rows = value["data"]
    elif key == "dataframe_records":
        if not isinstance(value, list) or not all(isinstance(r, dict) for r in value):
            raise BadRequest("'dataframe_records' must be a list of objects, one per row")
        rows = [list(r.values()) for r in value]
    else:
        rows = value
    if not isinstance(rows, list) or not rows:
        raise BadRequest(f"'{key}' must hold a non-empty list of rows")
    if all(not isinstance(r, list) for r in rows):
        rows = [rows]  # one row given flat
    out = np.empty((len(rows), INPUT_NODES), dtype=np.uint8)
    for i, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != INPUT_NODES:
            got = f"{len(row)} values" if isinstance(row, list) else type(row).__name__
            raise BadRequest(f"row {i}: expected {INPUT_NODES} pixel values, got {got}")
        if all(type(v) is int for v in row):  # the usual case, checked at once
            values = np.array(row, dtype=np.int64)
            if values.min() >= 0 and values.max() <= 255:
                out[i] = values
                continue
        for j, v in enumerate(row):  # find the first bad value and say what it is
            if isinstance(v, _Constant) or isinstance(v, bool) or not isinstance(v, (int, float)):
                shown = str(v) if isinstance(v, _Constant) else json.dumps(v)[:40]
                raise BadRequest(f"row {i}, pixel {j}: {shown} is not a number (pixels are JSON numbers 0..255)")
            if isinstance(v, float) and (not math.isfinite(v) or not v.is_integer()):
                raise BadRequest(f"row {i}, pixel {j}: {v!r} is not a whole number 0..255")
            if not 0 <= v <= 255:
                raise BadRequest(f"row {i}, pixel {j}: {v!r} is outside 0..255")
            out[i, j] = int(v)
    return out


def predict(network: Network, pixels: np.ndarray) -> list[dict]:
    """MLflow's record-oriented predictions: digit and the ten outputs per row (n,)."""
    outputs = network.query(scale_inputs(pixels, network.config.dtype))  # (n, 784) -> (n, 10)
    return [{"digit": int(np.argmax(o)), **{k: float(x) for k, x in zip(OUTPUT_KEYS, o)}} for o in outputs]


def parse_model_uri(model_uri: str) -> tuple[str, str | None, str | None]:
    """(name, alias, version) of ``models:/NAME@ALIAS`` (version None) or ``models:/NAME/VERSION``
    (alias None); ValueError for anything else."""
    ref = model_uri[len("models:/"):] if model_uri.startswith("models:/") else ""
    name, alias, version = (*ref.split("@", 1), None) if "@" in ref else (ref.partition("/")[0], None,
                                                                          ref.partition("/")[2])
    if not name or not (alias or version):
        raise ValueError(f"model URI {model_uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    return name, alias, version


def load(model_uri: str, tracking_uri: str | None = None) -> Served:
    """The network of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``, from its weights only."""

    from tracking import registry
    from tracking.store import tracking_uri as default_uri

    name, alias, version = parse_model_uri(model_uri)
    client = store.client(tracking_uri or default_uri())
    if alias is not None:
        version = str(client.get_model_version_by_alias(name, alias).version)
    return Served(registry.load_version_network(client, name, version), model_uri, name, version)


class _Fixed:
    """A model that never changes (what :func:`make_server` serves when given a Served)."""

    def __init__(self, served: Served):
        self.current, self.model_uri, self.last_error, self.checked_at = served, served.model_uri, None, None


def read_drawing(body: bytes):
    """The ink of a drawing sent by the page: ``{"width": w, "height": h, "ink": [h*w values 0..255]}``
    -> (h, w) uint8; :class:`BadRequest` saying what is wrong."""
    try:
        request = json.loads(body)
        w, h, ink = request["width"], request["height"], request["ink"]
    except (ValueError, UnicodeDecodeError, KeyError, TypeError):
        raise BadRequest('a drawing is {"width": w, "height": h, "ink": [h*w values 0..255]}') from None
    if not all(type(v) is int and 1 <= v <= MAX_DRAWING_SIDE for v in (w, h)):
        raise BadRequest(f"width and height must be whole numbers 1..{MAX_DRAWING_SIDE}")
    if not isinstance(ink, list) or len(ink) != w * h or not all(type(v) is int and 0 <= v <= 255 for v in ink):
        raise BadRequest(f"ink must be {w}x{h} = {w * h} whole numbers 0..255")
    return np.array(ink, dtype=np.uint8).reshape(h, w)


def make_server(source, host: str = "127.0.0.1", port: int = 5001) -> ThreadingHTTPServer:
    """An HTTP server (not started) answering MLflow's scoring API, and the drawing page at ``/``,
    with the model of ``source``: a :class:`Served` (fixed) or a :class:`tracking.following.Follower`
    (whatever version its alias names now). Every answer about a model says which version gave it."""
    from mynn.drawing import EmptyDrawing, to_mnist
    from tracking.draw_page import PAGE

    models = _Fixed(source) if isinstance(source, Served) else source
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        server_version = "mynn-serve"

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, payload: dict | str, served: Served | None = None) -> None:
            text = isinstance(payload, str)
            data = payload.encode() if text else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/html; charset=utf-8" if text else "application/json")
            self.send_header("Content-Length", str(len(data)))
            if served is not None:
                self.send_header("X-Model-Name", served.name or "")
                self.send_header("X-Model-Version", served.version or "")
            self.end_headers()
            self.wfile.write(data)

        def _not_ready(self) -> None:
            self._send(503, {"error_code": "MODEL_NOT_READY", "message": f"no model to serve yet: {models.model_uri} "
                             "names no version (it is looked up again every few seconds)"})

        def do_GET(self) -> None:  # noqa: N802
            served = models.current
            if self.path == "/health":  # the process answers (compose's health check)
                self._send(200, {"status": "ok", "model_loaded": served is not None})
            elif self.path == "/ping":  # MLflow's: a model is loaded
                self._send(200, {"status": "ok"}, served) if served is not None else self._not_ready()
            elif self.path == "/version":
                self._send(200, {"model_uri": models.model_uri, "model_name": served and served.name,
                                 "model_version": served and served.version, "last_check_error": models.last_error,
                                 "checked_at": models.checked_at}, served)
            elif self.path in ("/", "/index.html"):
                self._send(200, PAGE)
            else:
                self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no endpoint {self.path}"})

        def _body(self) -> bytes | None:
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                self._send(415, {"error_code": "BAD_REQUEST",
                                 "message": f"content type {ctype or 'none'!r}: send application/json"})
                return None
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY_BYTES:
                self._send(400 if length <= 0 else 413, {
                    "error_code": "BAD_REQUEST",
                    "message": f"a body of 1..{MAX_BODY_BYTES:,} bytes is needed (Content-Length {length})"})
                return None
            return self.rfile.read(length)

        def do_POST(self) -> None:  # noqa: N802
            if self.path not in ("/invocations", "/draw"):
                return self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no endpoint {self.path}"})
            body = self._body()
            if body is None:
                return
            served = models.current  # one model for the whole answer, whatever moves meanwhile
            try:
                if self.path == "/draw":
                    image = to_mnist(read_drawing(body))  # (28, 28)
                    pixels = image.reshape(1, INPUT_NODES)
                else:
                    pixels = parse_rows(body)
            except (BadRequest, EmptyDrawing) as exc:
                return self._send(400, {"error_code": "BAD_REQUEST", "message": str(exc)})
            if served is None:
                return self._not_ready()
            with lock:
                predictions = predict(served.network, pixels)
            answer = {"predictions": predictions, "model_name": served.name, "model_version": served.version}
            if self.path == "/draw":
                answer["image"] = image.tolist()
            self._send(200, answer, served)

    httpd = _Server((host, port), Handler)
    return httpd


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # the listen backlog (socketserver's default is 5): 200 clients connecting at once


def serve(model_uri: str, host: str = "127.0.0.1", port: int = 5001, poll_seconds: float = 5.0) -> None:
    """``mynn serve-model``: serve ``model_uri`` (following its alias), print where, answer until
    Ctrl-C or SIGTERM."""
    import signal

    from tracking.following import Follower
    from tracking.store import check_reachable, tracking_uri

    uri = tracking_uri()
    check_reachable(uri)
    follower = Follower(model_uri, uri, poll_seconds).start()
    httpd = make_server(follower, host, port)
    now = follower.current
    print(f"serving {model_uri} ({f'version {now.version}' if now else 'no version yet: waiting for it'}) on "
          f"http://{host}:{httpd.server_port}: the drawing page at /, MLflow's scoring API at /invocations", flush=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        follower.stop()
        httpd.server_close()
