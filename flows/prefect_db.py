"""Prefect's database schema made once per installation, copied into a new home.

A Prefect server on a home without ``prefect.db`` first runs all of Prefect's migrations:
about 20 s of CPU here, most of a first run on an empty home (issue #14). ``make setup`` runs
``mynn server prepare``, which lets Prefect migrate an empty database in a scratch home and
keeps it, with its SHA-256 and Prefect's version, under ``<sys.prefix>/share/mynn``. A server
launched for a home that has no database and uses Prefect's default one (no
``*DATABASE_CONNECTION_URL`` setting) starts from a copy instead; Prefect still checks the
schema when it starts and migrates whatever is missing. The copy is used only if its bytes
have the recorded digest and its Prefect version is this one. No Prefect import here.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DB_FILE = "prefect.db"  # Prefect's default database, in PREFECT_HOME
_URL_KEY = "DATABASE_CONNECTION_URL"  # PREFECT_API_/PREFECT_SERVER_DATABASE_CONNECTION_URL


def template_dir() -> Path:
    """Where this installation keeps its template: ``<sys.prefix>/share/mynn``."""
    return Path(sys.prefix) / "share" / "mynn"


def _names(directory: Path) -> tuple[Path, Path]:
    version = importlib.metadata.version("prefect")
    return directory / f"prefect-{version}.db", directory / f"prefect-{version}.json"


def _sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def prepare(directory: Path | None = None) -> Path:
    """Let Prefect create and migrate a database in a scratch home; keep it as the template
    (written atomically beside a JSON record of its digest). Returns the template's path."""
    directory = directory or template_dir()
    directory.mkdir(parents=True, exist_ok=True)
    db, record = _names(directory)
    env = {k: v for k, v in os.environ.items() if _URL_KEY not in k}
    with tempfile.TemporaryDirectory(dir=directory) as scratch:
        env.update(PREFECT_HOME=scratch, DO_NOT_TRACK="true", PREFECT_SERVER_ANALYTICS_ENABLED="false")
        done = subprocess.run([sys.executable, "-m", "prefect", "server", "database", "upgrade", "-y"], env=env,
                              stdin=subprocess.DEVNULL, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"prefect server database upgrade failed ({done.returncode}): "
                               f"{(done.stderr or done.stdout).strip()[-2000:]}")
        made = Path(scratch) / DB_FILE
        digest = _sha256(made)
        made.chmod(0o644)  # readable by every user of the installation (an image's non-root one)
        os.replace(made, db)
    tmp = record.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({"prefect": importlib.metadata.version("prefect"), "sha256": digest}))
    os.replace(tmp, record)
    return db


def uses_default_db(home: Path, env: dict[str, str]) -> bool:
    """True when a server for ``home`` with ``env`` keeps its data in ``home/prefect.db``:
    no database URL in the environment or in the home's profiles."""
    if any(_URL_KEY in key for key in env):
        return False
    profiles = home / "profiles.toml"
    return not (profiles.is_file() and _URL_KEY in profiles.read_text(encoding="utf-8", errors="replace"))


def seed(home: Path, env: dict[str, str], directory: Path | None = None) -> bool:
    """Copy the template to ``home/prefect.db`` when the home has none and uses Prefect's
    default database (:func:`copy_template`). True if copied."""
    return uses_default_db(Path(home), env) and copy_template(Path(home) / DB_FILE, directory)


def copy_template(target: Path, directory: Path | None = None) -> bool:
    """Place a copy of the template at ``target`` (a SQLite database path) if nothing is there
    and the template is this Prefect's with its recorded digest. True if copied."""
    target, directory = Path(target), directory or template_dir()
    db, record = _names(directory)
    if target.exists() or not db.is_file() or not record.is_file():
        return False
    try:
        expected = json.loads(record.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if not isinstance(expected, dict) or expected.get("prefect") != importlib.metadata.version("prefect"):
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=".prefect-db-", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        try:
            with os.fdopen(fd, "wb") as out, open(db, "rb") as src:
                shutil.copyfileobj(src, out)
        except OSError:  # an unreadable template, a full disk: Prefect makes its own database
            return False
        if _sha256(tmp) != expected.get("sha256"):  # the bytes placed are the bytes recorded
            return False
        try:
            os.link(tmp, target)  # never replaces a database another starter placed meanwhile
        except FileExistsError:
            return False
        return True
    finally:
        tmp.unlink(missing_ok=True)
