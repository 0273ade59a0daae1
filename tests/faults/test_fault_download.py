"""Case 2: downloads that go wrong, through ``flows.tasks.download.fn`` against real HTTP(S)
servers on 127.0.0.1 that misbehave on demand. Retries happen for real (only their sleeps are
recorded instead of slept, fixture ``no_backoff``)."""
from __future__ import annotations

import datetime
import hashlib
import ipaddress
import os
import ssl
import warnings

import pytest
from mlflow import MlflowClient

from tests.faults.faultkit import TEST_10, TRAIN_100, data_folder, files_under, stray_temporaries
from tests.httpserver import start_http
from flows import tasks
from mynn import fetch as F
from mynn import sources as S
from tracking.runs import start_run
from tracking.store import ensure_experiment
from mynn.config import NetworkConfig


def _serve_subsets(state) -> None:
    state.files["/mnist_train.csv"] = TRAIN_100.read_bytes()
    state.files["/mnist_test.csv"] = TEST_10.read_bytes()


def test_plain_http_without_a_known_digest_warns_and_the_run_records_it_unverified(
        http_server, tracking_env, tmp_path):
    _serve_subsets(http_server)
    with pytest.warns(F.UnverifiedDownloadWarning, match=r"plain http and no sha256 is known .*unverified"):
        downloaded = tasks.download.fn(http_server.base, cache_dir=str(tracking_env.cache))
    assert not downloaded.verified
    data = tasks.preprocess.fn(downloaded, cache_dir=str(tracking_env.cache))
    client, exp = ensure_experiment(tracking_env.uri, "faults")
    run_id = start_run(client, exp, NetworkConfig(hidden_nodes=5, epochs=1))
    tasks.log_data.fn(data, tracking_env.uri, run_id)
    params = MlflowClient(tracking_env.uri).get_run(run_id).data.params
    assert params["data_verified"] == "false" and params["source"] == http_server.base
    # the same files from the shipped folder, with digests in SHA256SUMS: verified, no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert tasks.download.fn("shipped-small", cache_dir=str(tracking_env.cache)).verified


# ----------------------------------------------------------------------------- https


def _self_signed(tmp_path):
    """A certificate for 127.0.0.1 and its key (PEM files), made on the spot."""
    pytest.importorskip("cryptography")
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(hours=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


@pytest.fixture
def https_server(tmp_path, no_proxy, monkeypatch):
    """A real TLS server on 127.0.0.1 whose certificate the client trusts (SSL_CERT_FILE)."""
    cert, key = _self_signed(tmp_path)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # read by OpenSSL when urllib makes its context
    state, stop = start_http(context)
    try:
        yield state
    finally:
        stop()


def test_https_redirect_to_plain_http_is_refused(https_server, http_server, tmp_path):
    _serve_subsets(https_server)
    _serve_subsets(http_server)
    cache = tmp_path / "cache"
    # first, the TLS set-up is real: the same files over https download (no warning: not plain http)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok = tasks.download.fn(https_server.base, cache_dir=str(tmp_path / "ok-cache"))
    assert ok.train.path.read_bytes() == TRAIN_100.read_bytes()

    https_server.actions["/mnist_train.csv.gz"] = [f"redirect:{http_server.base}mnist_train.csv.gz"]
    with pytest.raises(F.FetchError, match=r"refusing redirect from https to http://127\.0\.0\.1") as info:
        tasks.download.fn(https_server.base, cache_dir=str(cache))
    assert info.value.url == https_server.base + "mnist_train.csv.gz"
    assert http_server.requests == []  # the plain http address was never asked
    assert files_under(cache) == []


# ----------------------------------------------------------------------------- broken transfers


def test_a_truncated_transfer_is_retried_then_fails_leaving_no_temporary(http_server, tmp_path, no_backoff):
    _serve_subsets(http_server)
    http_server.actions["/mnist_train.csv"] = ["short"] * 10  # Content-Length says more than comes
    cache = tmp_path / "cache"
    with pytest.raises(F.FetchError, match=r"mnist_train\.csv: giving up after 4 attempts: truncated: "
                                           r"got 60674 of 182022 bytes") as info:
        tasks.download.fn(http_server.base, cache_dir=str(cache))
    assert not isinstance(info.value, F.DigestMismatchError)
    assert info.value.url == http_server.base + "mnist_train.csv"
    assert http_server.count("/mnist_train.csv") == 4 and no_backoff == [0.5, 1.0, 2.0]
    assert files_under(cache) == [] and stray_temporaries(cache) == []


def test_a_truncated_transfer_once_is_retried_and_succeeds(http_server, tmp_path, no_backoff):
    _serve_subsets(http_server)
    http_server.actions["/mnist_train.csv"] = ["short"]
    with pytest.warns(F.UnverifiedDownloadWarning):
        got = tasks.download.fn(http_server.base, cache_dir=str(tmp_path / "cache"))
    assert got.train.path.read_bytes() == TRAIN_100.read_bytes()
    assert http_server.count("/mnist_train.csv") == 2 and no_backoff == [0.5]
    assert stray_temporaries(tmp_path / "cache") == []


def test_connection_resets_are_retried_then_fail(http_server, tmp_path, no_backoff):
    _serve_subsets(http_server)
    cache = tmp_path / "cache"
    http_server.actions["/mnist_test.csv"] = ["reset"]  # once: the retry gets it
    http_server.actions["/mnist_train.csv"] = ["reset"] * 10  # always
    with pytest.raises(F.FetchError, match=r"mnist_train\.csv: giving up after 4 attempts: "
                                           r"ConnectionResetError: .*Connection reset by peer"):
        tasks.download.fn(http_server.base, cache_dir=str(cache))
    assert http_server.count("/mnist_train.csv") == 4
    assert files_under(cache) == []

    http_server.actions["/mnist_train.csv"] = []
    with pytest.warns(F.UnverifiedDownloadWarning):
        got = tasks.download.fn(http_server.base, cache_dir=str(cache))
    assert got.test.path.read_bytes() == TEST_10.read_bytes()
    assert http_server.count("/mnist_test.csv") == 2
    assert stray_temporaries(cache) == []


def test_a_digest_mismatch_is_not_retried_and_not_cached(http_server, tmp_path, no_backoff):
    """A source that pins the digest of mnist_train.csv.gz (as the shipped one does): the
    server's bytes are not it."""
    import gzip

    _serve_subsets(http_server)
    fake = gzip.compress(TRAIN_100.read_bytes())
    http_server.files["/mnist_train.csv.gz"] = fake
    real = S.known_digests()["mnist_train.csv.gz"]
    pinned = S.Source("pinned", http_server.base, True, ("mnist_train.csv.gz", "mnist_train.csv"),
                      ("mnist_test.csv.gz", "mnist_test.csv"), pinned=(("mnist_train.csv.gz", real),))
    cache = tmp_path / "cache"
    with pytest.raises(F.DigestMismatchError) as info:
        tasks.download.fn(pinned, cache_dir=str(cache))
    err = info.value
    assert (err.expected, err.actual) == (real, hashlib.sha256(fake).hexdigest())
    assert str(err).startswith(f"{http_server.base}mnist_train.csv.gz: sha256 mismatch: expected {err.expected}")
    assert http_server.count("/mnist_train.csv.gz") == 1 and no_backoff == []  # not retried
    assert http_server.count("/mnist_train.csv") == 0  # nor replaced by the other candidate
    assert files_under(cache) == []


# ----------------------------------------------------------------------------- the cache dir


def test_a_cache_folder_linked_outside_the_cache_is_refused(tmp_path):
    """files/ in the cache is a symlink to a folder elsewhere: nothing is written through it."""
    source = data_folder(tmp_path / "source")
    cache = tmp_path / "cache"
    outside = tmp_path / "outside"
    outside.mkdir()
    cache.mkdir()
    os.symlink(outside, cache / "files")
    with pytest.raises(F.FetchError, match=r"refusing path .*/files/[0-9a-f]{64}/mnist_train\.csv(\.gz)?: "
                                           r"it is outside the cache dir"):
        tasks.download.fn(str(source), cache_dir=str(cache))
    assert files_under(outside) == []
    assert stray_temporaries(cache) == [] and not (cache / "index").exists()
