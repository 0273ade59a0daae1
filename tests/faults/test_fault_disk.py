"""Case 7: the disk fills up while the cache, a checkpoint or the parsed arrays are written.

Each write runs in a fresh process with RLIMIT_FSIZE set and SIGXFSZ ignored, so a write
past the limit fails with OSError EFBIG exactly where a full disk fails with ENOSPC (this
works anywhere, without privileges). Where a tmpfs can be mounted (root), the train task also
runs with its run folder on a real, tiny, full file system. Each failure must raise an error
naming the path being written, and leave no partial file under the final name and no
temporary file."""
from __future__ import annotations

import errno
import shutil
import subprocess
import uuid

import pytest

from mynn.arrays import load_npy, save_npy
from mynn.csvfile import read_csv
from tests.faults.faultkit import TEST_10, TRAIN_100, data_folder, files_under, run_with_file_size_limit, stray_temporaries
from mynn.network import Network
from mynn.config import NetworkConfig

KIB = 1024


def test_fetch_into_a_full_cache_names_the_file_and_leaves_nothing(tmp_path):
    source = data_folder(tmp_path / "source")  # mnist_train.csv is 182,022 bytes
    cache = tmp_path / "cache"
    out = run_with_file_size_limit("from mynn.fetch import fetch",
                                   f"fetch({str(source)!r}, {str(cache)!r})", limit=64 * KIB)
    assert out["type"] == "FetchError" and out["cause_type"] == "OSError", out
    assert out["cause_errno"] == errno.EFBIG
    message = out["message"]
    assert message.startswith(str(source / "mnist_train.csv") + ": "), message  # the user's file
    assert f"{cache}/.fetch-" in message and "File too large (writing mnist_train.csv into the cache)" in message
    assert files_under(cache) == []  # no partial file, no index entry, no temporary


def test_a_download_into_a_full_cache_is_not_retried(tmp_path, http_server):
    http_server.serve_folder(data_folder(tmp_path / "source"))
    cache = tmp_path / "cache"
    out = run_with_file_size_limit("import warnings; warnings.simplefilter('ignore')\nfrom mynn.fetch import fetch",
                                   f"fetch({http_server.base!r}, {str(cache)!r}, backoff=0)", limit=64 * KIB)
    assert out["type"] == "FetchError" and out["cause_errno"] == errno.EFBIG, out
    assert out["message"].startswith(f"{http_server.base}mnist_train.csv: OSError: [Errno {errno.EFBIG}] "
                                     f"{cache}/.fetch-")
    assert http_server.count("/mnist_train.csv") == 1  # a full disk does not get better by asking again
    assert files_under(cache) == []


def test_a_checkpoint_on_a_full_disk_names_the_file_and_keeps_the_old_one(tmp_path):
    folder = tmp_path / "run" / "checkpoints"
    old = Network.initial(NetworkConfig(hidden_nodes=4)).save(folder / "epoch-001.npz")  # 27 KB, fits
    before = old.read_bytes()
    setup = "from mynn.network import Network\nfrom mynn.config import NetworkConfig\n" \
            "net = Network.initial(NetworkConfig(hidden_nodes=100))  # 690 KB of weights"
    for name in ("epoch-002.npz", "epoch-001.npz"):  # a new file; and replacing an existing one
        path = folder / name
        out = run_with_file_size_limit(setup, f"net.save({str(path)!r})", limit=100 * KIB)
        assert out["type"] == "OSError" and out["errno"] == errno.EFBIG, out
        assert out["message"] == f"[Errno {errno.EFBIG}] {path}: File too large"
        assert sorted(p.name for p in folder.iterdir()) == ["epoch-001.npz"]  # no partial file, no temporary
        assert old.read_bytes() == before and Network.load(old).config.hidden_nodes == 4


def test_parsed_arrays_on_a_full_disk_name_the_folder_and_keep_the_previous_version(tmp_path):
    target = tmp_path / "arrays" / "train"
    save_npy(read_csv(TEST_10), target)  # a previous version there (8 KB of pixels)
    previous = load_npy(target).digest
    out = run_with_file_size_limit(f"from mynn.arrays import save_npy\nfrom mynn.csvfile import read_csv\nds = read_csv({str(TRAIN_100)!r})",
                                   f"save_npy(ds, {str(target)!r})", limit=32 * KIB)  # pixels.npy: 78 KB
    assert out["type"] == "OSError" and out["errno"] == errno.EFBIG, out
    assert out["message"] == f"[Errno {errno.EFBIG}] {target}: File too large"
    assert load_npy(target).digest == previous  # the previous version, complete
    assert [p.name for p in target.parent.iterdir()] == ["train"] and stray_temporaries(tmp_path) == []

    fresh = tmp_path / "arrays" / "fresh"
    out = run_with_file_size_limit(f"from mynn.arrays import save_npy\nfrom mynn.csvfile import read_csv\nds = read_csv({str(TRAIN_100)!r})",
                                   f"save_npy(ds, {str(fresh)!r})", limit=32 * KIB)
    assert out["message"] == f"[Errno {errno.EFBIG}] {fresh}: File too large"
    assert not fresh.exists() and stray_temporaries(tmp_path) == []


@pytest.fixture
def tiny_tmpfs(tmp_path):
    """A 256 KiB tmpfs (a real file system that fills up: ENOSPC); skipped where mounting
    is not allowed."""
    mount = tmp_path / f"tmpfs-{uuid.uuid4().hex[:8]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0755", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip() or done.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True, timeout=30)


def test_the_train_task_on_a_full_disk_fails_naming_the_checkpoint(tracking_env, tiny_tmpfs):
    from mlflow import MlflowClient

    from flows import tasks
    from tracking.runs import start_run
    from tracking.store import ensure_experiment

    config = NetworkConfig(hidden_nodes=50, epochs=2)  # a checkpoint is 313 KB: more than the disk
    data = tasks.preprocess.fn(tasks.download.fn("shipped-small"))
    client, exp = ensure_experiment(tracking_env.uri, "faults")
    run_id = start_run(client, exp, config)
    run_dir = tiny_tmpfs / "run"
    with pytest.raises(OSError) as info:
        tasks.train.fn(data, config, tracking_env.uri, run_id, run_dir=str(run_dir))
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == f"[Errno {errno.ENOSPC}] {run_dir}/checkpoints/epoch-001.npz: No space left on device"
    assert files_under(tiny_tmpfs) == []  # not a byte left behind on the full disk
    assert shutil.disk_usage(tiny_tmpfs).used < 16 * 1024
    assert MlflowClient(tracking_env.uri).get_metric_history(run_id, "train_mse") == []  # nothing logged
