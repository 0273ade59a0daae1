"""Tests of mynn.files: the one atomic-write helper (real files under tmp_path)."""
from __future__ import annotations

import errno
import os

import pytest

from mynn.files import AtomicWrite, naming


def test_a_complete_write_replaces_the_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "sub" / "out.bin"  # the folder is created
    with AtomicWrite(target) as tmp:
        assert tmp.parent == target.parent and tmp.name.startswith(".out.bin.") and tmp.name.endswith(".tmp")
        assert not target.exists()  # nothing under the final name until the block ends
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new"
    assert os.listdir(target.parent) == ["out.bin"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask  # an ordinary file's mode


def test_a_failure_mid_write_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    target = tmp_path / "weights.npz"
    target.write_bytes(b"old")
    with pytest.raises(OSError) as info:
        with AtomicWrite(target) as tmp, open(tmp, "wb") as fh:
            fh.write(b"half of the new")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["weights.npz"]
    # the error names the file being written, with the same errno (so the same subclass)
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == f"[Errno {errno.ENOSPC}] {target}: No space left on device"
    # any other error is left as it is, and the temporary is gone too
    with pytest.raises(KeyboardInterrupt):
        with AtomicWrite(target) as tmp:
            tmp.write_bytes(b"new")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and os.listdir(tmp_path) == ["weights.npz"]


def test_a_failed_rename_keeps_the_previous_folder(tmp_path, monkeypatch):
    target = tmp_path / "arrays"
    with AtomicWrite(target, directory=True) as tmp:
        (tmp / "a.npy").write_bytes(b"v1")
    with AtomicWrite(target, directory=True) as tmp:  # an existing folder is replaced whole
        (tmp / "b.npy").write_bytes(b"v2")
    assert os.listdir(target) == ["b.npy"] and os.listdir(tmp_path) == ["arrays"]

    real_replace = os.replace

    def fail_on_the_final_rename(src, dst):
        if os.fspath(dst) == os.fspath(target) and ".arrays.old-" not in os.fspath(src):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", fail_on_the_final_rename)
    with pytest.raises(OSError, match=f"{target}: Invalid cross-device link"):
        with AtomicWrite(target, directory=True) as tmp:
            (tmp / "c.npy").write_bytes(b"v3")
    monkeypatch.undo()
    assert os.listdir(target) == ["b.npy"] and (target / "b.npy").read_bytes() == b"v2"
    assert os.listdir(tmp_path) == ["arrays"]  # no temporary, no moved-aside old version


def test_a_target_named_inside_the_block(tmp_path):
    stage = AtomicWrite(None, folder=tmp_path, prefix=".fetch-", suffix=".part", name_errors=False)
    with stage as tmp:
        assert tmp.name.startswith(".fetch-") and tmp.name.endswith(".part")
        tmp.write_bytes(b"bytes")
        stage.target = tmp_path / "files" / "abc" / "x.csv"
    assert stage.target.read_bytes() == b"bytes" and os.listdir(tmp_path) == ["files"]
    with pytest.raises(ValueError, match="no target"):
        with AtomicWrite(None, folder=tmp_path, prefix=".fetch-") as tmp:
            tmp.write_bytes(b"nowhere to go")
    assert os.listdir(tmp_path) == ["files"]


def test_naming_keeps_the_errno_and_names_the_path():
    named = naming(FileNotFoundError(errno.ENOENT, "No such file or directory"), "/x/y", " (detail)")
    assert isinstance(named, FileNotFoundError) and named.errno == errno.ENOENT
    assert str(named) == f"[Errno {errno.ENOENT}] /x/y: No such file or directory (detail)"
    assert str(naming(OSError("odd"), "/x/y")) == "/x/y: odd"
