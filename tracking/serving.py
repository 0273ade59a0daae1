"""``mynn serve-model``: MLflow's scoring API for a registered mynn model, strict about input.

``mlflow models serve`` converts JSON values to the model's float64 signature before the model
sees them, so ``true`` and ``"12"`` become pixels, and a model's refusal reaches the client
as MLflow's generic "unexpected error" with a stack trace naming local paths. This server
answers the same requests in the same shapes, with a reason a client can act on:

- ``GET /ping`` (and ``/health``): 200 when a model is loaded; ``GET /version``: which model.
- ``POST /invocations`` (``application/json``): rows of 784 raw pixels, as ``{"inputs": rows}``,
  ``{"instances": rows}``, ``{"dataframe_split": {"data": rows}}`` or
  ``{"dataframe_records": [{...784 values...}, ...]}``. Every value must be a JSON number (not a
  boolean, a string or null), finite, whole and in 0..255. The answer is
  ``{"predictions": [{"digit": d, "output_0": ..., "output_9": ...}, ...]}``, as MLflow gives it,
  plus ``"model_version"``.
- A bad request gets HTTP 400 ``{"error_code": "BAD_REQUEST", "message": "<the reason>"}``:
  no stack trace, no path.

The model is loaded from its weights file only (:meth:`mynn.network.Network.load`, checked
against the digest recorded at registration): no code from the model folder runs.
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


def load(model_uri: str, tracking_uri: str | None = None) -> Served:
    """The network of ``models:/NAME@ALIAS`` or ``models:/NAME/VERSION``, from its weights only."""

    from tracking import registry
    from tracking.store import tracking_uri as default_uri

    if not model_uri.startswith("models:/"):
        raise ValueError(f"model URI {model_uri!r}: expected models:/NAME@ALIAS or models:/NAME/VERSION")
    ref = model_uri[len("models:/"):]
    uri = tracking_uri or default_uri()
    client = store.client(uri)
    if "@" in ref:
        name, alias = ref.split("@", 1)
        version = str(client.get_model_version_by_alias(name, alias).version)
    else:
        name, _, version = ref.partition("/")
    return Served(registry.load_version_network(client, name, version), model_uri, name, version)


def make_server(served: Served, host: str = "127.0.0.1", port: int = 5001) -> ThreadingHTTPServer:
    """An HTTP server (not started) answering MLflow's scoring API for ``served``."""
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        server_version = "mynn-serve"

        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, payload: dict) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # noqa: N802
            if self.path in ("/ping", "/health"):
                self._send(200, {"status": "ok"})
            elif self.path == "/version":
                self._send(200, {"model_uri": served.model_uri, "model_name": served.name,
                                 "model_version": served.version})
            else:
                self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no endpoint {self.path}"})

        def do_POST(self) -> None:  # noqa: N802
            if self.path != "/invocations":
                return self._send(404, {"error_code": "ENDPOINT_NOT_FOUND", "message": f"no endpoint {self.path}"})
            ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
            if ctype != "application/json":
                return self._send(415, {"error_code": "BAD_REQUEST",
                                        "message": f"content type {ctype or 'none'!r}: send application/json"})
            try:
                length = int(self.headers.get("Content-Length") or "0")
            except ValueError:
                length = -1
            if not 0 < length <= MAX_BODY_BYTES:
                return self._send(400 if length <= 0 else 413, {
                    "error_code": "BAD_REQUEST",
                    "message": f"a body of 1..{MAX_BODY_BYTES:,} bytes is needed (Content-Length {length})"})
            try:
                pixels = parse_rows(self.rfile.read(length))
            except BadRequest as exc:
                return self._send(400, {"error_code": "BAD_REQUEST", "message": str(exc)})
            with lock:
                predictions = predict(served.network, pixels)
            self._send(200, {"predictions": predictions, "model_version": served.version})

    httpd = ThreadingHTTPServer((host, port), Handler)
    httpd.daemon_threads = True
    return httpd


def serve(model_uri: str, host: str = "127.0.0.1", port: int = 5001) -> None:
    """``mynn serve-model``: load the model, print where it is served, answer until Ctrl-C."""
    from tracking.store import check_reachable, tracking_uri

    check_reachable(tracking_uri())
    served = load(model_uri)
    httpd = make_server(served, host, port)
    print(f"serving {model_uri} (version {served.version}) on http://{host}:{httpd.server_port}", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        httpd.server_close()
