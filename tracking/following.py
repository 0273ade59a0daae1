"""The model a server answers with, following an alias: ``models:/NAME@ALIAS`` is looked up
again every ``poll_seconds``, and when the alias names another version, that version's network
is loaded (from its weights only, digest-checked) and put in place with one assignment.

A request reads :attr:`Follower.current` once and answers with that model, so a switch drops
no request and mixes no two versions in one answer. A model URI naming a version
(``models:/NAME/VERSION``) is loaded once and never changes. Until the alias exists (a new
stack, before its first training) there is no model: the server says so (503) and keeps looking.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable

from mlflow.exceptions import MlflowException

from tracking import store


class Follower:
    """The served model of ``model_uri`` (see the module's docstring)."""

    def __init__(self, model_uri: str, tracking_uri: str, poll_seconds: float = 5.0,
                 log: Callable[[str], None] = print):
        from tracking.serving import parse_model_uri

        self.model_uri, self.tracking_uri, self.poll_seconds, self.log = model_uri, tracking_uri, poll_seconds, log
        self.name, self.alias, self.version = parse_model_uri(model_uri)
        self.current = None  # tracking.serving.Served, replaced whole when the alias moves
        self.last_error: str | None = None
        self.checked_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _version_now(self) -> str | None:
        """The version the URI names now; None while the alias (or model) does not exist."""
        if self.alias is None:
            return self.version
        try:
            return str(store.client(self.tracking_uri).get_model_version_by_alias(self.name, self.alias).version)
        except MlflowException as exc:
            if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def check(self) -> bool:
        """Look the alias up; load and switch to the version it names if that is another one.
        True if it switched."""
        from tracking.serving import Served
        from tracking import registry

        version = self._version_now()
        self.checked_at = time.time()
        if version is None or (self.current is not None and self.current.version == version):
            return False
        network = registry.load_version_network(store.client(self.tracking_uri), self.name, version)
        previous, self.current = self.current, Served(network, self.model_uri, self.name, version)
        self.log(f"serving {self.model_uri}: version {version}"
                 + (f" (was {previous.version})" if previous is not None else ""))
        return True

    def start(self) -> "Follower":
        """Check once now, then every ``poll_seconds`` in a daemon thread (an alias only)."""
        self.check()
        if self.alias is not None:
            self._thread = threading.Thread(target=self._run, name="mynn-follow-alias", daemon=True)
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.check()
                self.last_error = None
            except Exception as exc:  # a server keeps answering with the model it has; the error is shown
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.log(f"serving {self.model_uri}: checking the alias failed, still serving version "
                         f"{self.current.version if self.current else 'none'}: {self.last_error}")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
