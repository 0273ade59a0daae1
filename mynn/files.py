"""Writing files so that a crash or a full disk never leaves half of one under its name.

One way to do it, used for every file the project writes (weights, parsed arrays, the
download cache, index entries, figures, checkpoint stats)::

    with AtomicWrite(path) as tmp:      # a new, empty temporary file beside ``path``
        with open(tmp, "wb") as f:
            f.write(data)
    # here: ``tmp`` was fsynced, renamed over ``path`` with os.replace, the folder fsynced

If the block raises, the temporary file (or folder) is removed, anything already at ``path``
is left as it was, and an ``OSError`` is raised again naming ``path`` (same errno, see
:func:`naming`). The temporary file gets an ordinary file's mode (0o666 less the umask).
"""
from __future__ import annotations

import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Union

PathLike = Union[str, os.PathLike]

__all__ = ["AtomicWrite", "naming"]


def naming(error: OSError, path: PathLike, detail: str = "") -> OSError:
    """The same error (same errno, so the same OSError subclass) with ``path`` in its message."""
    if error.errno is None:
        return OSError(f"{os.fspath(path)}: {error}{detail}")
    return OSError(error.errno, f"{os.fspath(path)}: {error.strerror or error}{detail}")


def _fsync(path: PathLike, directory: bool = False) -> None:
    """Make a file's bytes, or a folder's entries (a rename into it), durable. (Folders are
    not fsynced on Windows, where they cannot be opened.)"""
    if directory and sys.platform == "win32":
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class AtomicWrite:
    """A temporary file (or, ``directory=True``, folder) that becomes ``target`` only when complete.

    The temporary is created in ``folder`` (default: the target's folder, created if missing)
    and named ``{prefix}{pid}-{random}{suffix}`` (default prefix ``.{target name}.``, suffix
    ``.tmp``). ``target`` may be set (or changed) inside the block, for a name known only once
    the bytes are written (the download cache names files by their digest); it must be on the
    same file system as ``folder``.

    On leaving the block without an error: the file, or every file in the folder, and the
    folder are fsynced; an existing target folder is moved aside, the temporary renamed into
    place and the old folder removed (put back if the rename fails); the target's folder is
    fsynced. On an error: the temporary is removed, and an ``OSError`` is re-raised naming the
    target (unless ``name_errors=False``: then it is re-raised as it is).
    """

    def __init__(self, target: PathLike | None, *, folder: PathLike | None = None,
                 prefix: str | None = None, suffix: str = ".tmp", directory: bool = False,
                 name_errors: bool = True) -> None:
        if target is None and folder is None:
            raise ValueError("AtomicWrite: give a target or a folder for the temporary")
        self.target = None if target is None else Path(target)
        self.folder = Path(folder) if folder is not None else self.target.parent
        self.prefix = prefix if prefix is not None else f".{self.target.name}."
        self.suffix = suffix
        self.directory = directory
        self.name_errors = name_errors
        self.path: Path | None = None  # the temporary, once created

    def __enter__(self) -> Path:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{self.prefix}{os.getpid()}-{secrets.token_hex(4)}{self.suffix}"
            if self.directory:
                path.mkdir()
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
        except OSError as exc:
            raise self._named(exc) from exc
        self.path = path
        return path

    def __exit__(self, kind, exc, traceback) -> bool:
        if exc is None:
            try:
                self._commit()
                return False
            except BaseException as error:  # noqa: BLE001 - re-raised below
                exc = error
        _remove(self.path)
        if isinstance(exc, OSError) and self.name_errors and self.target is not None:
            raise self._named(exc) from exc
        if exc is not None and kind is None:  # an error of the commit itself
            raise exc
        return False

    def _named(self, exc: OSError) -> OSError:
        return naming(exc, self.target) if self.name_errors and self.target is not None else exc

    def _commit(self) -> None:
        if self.target is None:
            raise ValueError("AtomicWrite: no target to move the temporary file to")
        if self.directory:
            for entry in self.path.iterdir():
                _fsync(entry)
        _fsync(self.path, directory=self.directory)
        self.target.parent.mkdir(parents=True, exist_ok=True)
        old = None
        if self.directory and self.target.exists():
            old = self.target.parent / f".{self.target.name}.old-{os.getpid()}-{secrets.token_hex(4)}"
            os.replace(self.target, old)
        try:
            os.replace(self.path, self.target)
        except BaseException:
            if old is not None and not self.target.exists():
                os.replace(old, self.target)  # put the previous version back
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        _fsync(self.target.parent, directory=True)
