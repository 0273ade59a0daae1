"""tracking.store: the one MLflow client factory and its defaults, where artifacts go, run links."""
from __future__ import annotations

import os

from tracking import store


def test_the_client_applies_the_retry_bounds_unless_the_user_set_them(monkeypatch, tmp_path):
    for key in store.CLIENT_DEFAULTS:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_TIMEOUT", "7")  # the user's own value
    client = store.client(f"sqlite:///{tmp_path / 'm.db'}")
    assert client.tracking_uri == f"sqlite:///{tmp_path / 'm.db'}"
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "3"
    assert os.environ["MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"] == "1"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "7"
    from mlflow.environment_variables import MLFLOW_HTTP_REQUEST_MAX_RETRIES

    assert MLFLOW_HTTP_REQUEST_MAX_RETRIES.get() == 3  # what MLflow's HTTP layer reads per request


def test_artifacts_go_beside_a_sqlite_store_in_a_folder_named_by_digest(tmp_path):
    loc = store.artifact_location(f"sqlite:///{tmp_path / 'mlflow.db'}", "../../etc")
    assert loc.startswith((tmp_path / "mlartifacts").as_uri() + "/exp-") and ".." not in loc
    assert store.artifact_location("http://127.0.0.1:5000", "x") is None


def test_run_links_leave_credentials_out(monkeypatch):
    monkeypatch.delenv("MYNN_MLFLOW_UI_URL", raising=False)
    assert store.run_ui_url("https://me:secret@mlflow.example", "3", "abc") == \
        "https://mlflow.example/#/experiments/3/runs/abc?workflowType=machine_learning"
    assert store.run_ui_url("sqlite:///x.db", "1", "r") == "http://127.0.0.1:5000/#/experiments/1/runs/r?workflowType=machine_learning"


# ---- the health pre-check makes its request as MLflow's client does -----------------------------
def _https_health_server(tmp_path, token: str):
    """A real HTTPS server on 127.0.0.1 (a self-signed certificate made by openssl) whose /health
    answers 200 only to ``Authorization: Bearer <token>`` and 401 otherwise."""
    import http.server
    import shutil
    import ssl
    import subprocess
    import threading

    import pytest

    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)

    class Health(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            ok = self.path == "/health" and self.headers.get("Authorization") == f"Bearer {token}"
            self.send_response(200 if ok else 401)
            self.end_headers()
            self.wfile.write(b"OK" if ok else b"no")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Health)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, cert


def test_health_pre_check_honours_mlflow_token_and_tls_settings(tmp_path, monkeypatch):
    import pytest

    server, cert = _https_health_server(tmp_path, token="s3cret")
    uri = f"https://127.0.0.1:{server.server_address[1]}"
    try:
        for name in ("MLFLOW_TRACKING_TOKEN", "MLFLOW_TRACKING_SERVER_CERT_PATH", "MLFLOW_TRACKING_INSECURE_TLS",
                     "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
            monkeypatch.delenv(name, raising=False)
        with pytest.raises(store.TrackingUnavailableError, match="not reachable.*CERTIFICATE_VERIFY_FAILED|"
                                                                 "not reachable.*certificate verify failed"):
            store.check_reachable(uri)  # a private CA, not trusted
        monkeypatch.setenv("MLFLOW_TRACKING_SERVER_CERT_PATH", str(cert))
        with pytest.raises(store.TrackingUnavailableError, match="answered 401 on /health"):
            store.check_reachable(uri)  # trusted now, but no token
        monkeypatch.setenv("MLFLOW_TRACKING_TOKEN", "s3cret")
        store.check_reachable(uri)  # what MLflow's client would send: passes
        monkeypatch.delenv("MLFLOW_TRACKING_SERVER_CERT_PATH")
        monkeypatch.setenv("MLFLOW_TRACKING_INSECURE_TLS", "true")
        store.check_reachable(uri)
    finally:
        server.shutdown()


def test_health_pre_check_names_the_address_without_its_credentials():
    import pytest

    with pytest.raises(store.TrackingUnavailableError) as err:
        store.check_reachable("http://me:hunter2@127.0.0.1:9", timeout=2)  # nothing listens on port 9
    assert "http://me:***@127.0.0.1:9" in str(err.value) or "http://127.0.0.1:9" in str(err.value)
    assert "hunter2" not in str(err.value)
