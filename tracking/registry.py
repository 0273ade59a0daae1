"""The model registry: log a run's model, register a version, move the alias only on merit.

Both the new model and the current champion are scored, record by record, on the same test
set (the champion is re-measured, not taken from its old run). With the default rule
``"mcnemar"`` the alias (``champion`` by default) moves to the new version only if it is
right on more records than the champion and McNemar's exact test (one-sided mid-p, see
:mod:`mynn.stats`) says so at level ``alpha``; with ``"at-least"`` it moves when the new
performance is at least the champion's. Every decision is recorded: on the run (tags
``mynn.model_version``, ``mynn.promotion``, ``mynn.promotion_p_value``,
``mynn.champion_performance``; metric ``promotion_p_value``) and on the version (tags).

Registrations of one model that run at the same time decide one after the other, in version
order (:func:`_wait_for_earlier_decisions`), so each compares with the champion left by the
ones before it.
"""
from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from mlflow import MlflowClient
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException

from mynn.arrays import load_npy
from mynn.cache import sha256_file
from mynn.encoding import scale_inputs
from mynn.network import Network
from mynn import promotion as promotion_rules
from mynn.promotion import DEFAULT_ALPHA, DEFAULT_RULE, Promotion
from mynn.prepare import PreparedData
from tracking import models, store
from tracking.names import check_alias, check_model_name
from tracking.runs import now_ms

TAG_WEIGHTS_SHA256 = models.TAG_WEIGHTS_SHA256  # version tag: SHA-256 of the registered weights file
#: At most this long a registration waits for earlier versions' decisions (see register).
DECISION_WAIT_SECONDS = 60.0


@dataclass(frozen=True)
class Registration:
    """What register did: the version, whether the alias moved, and why."""

    model_name: str
    version: str
    alias: str
    promoted: bool
    reason: str
    performance: float
    champion_version: str | None
    champion_performance: float | None
    p_value: float | None = None  # one-sided McNemar mid-p (None: no champion to compare with)
    b: int | None = None  # test records the new model gets right and the champion wrong
    c: int | None = None  # test records the champion gets right and the new model wrong
    rule: str = "mcnemar"  # the promotion rule applied: "mcnemar" or "at-least"
    alpha: float = 0.05  # the significance level of the "mcnemar" rule

    def to_dict(self) -> dict:
        return asdict(self)


def log_model(client: MlflowClient, run_id: str, weights: Path, example_pixels: np.ndarray, step: int = 0) -> str:
    """The run's network as an MLflow 3 LoggedModel (:func:`tracking.models.log_model`); its URI."""
    return models.log_model(client, run_id, weights, example_pixels, step)


def load_version_network(client: MlflowClient, model_name: str, version: str) -> Network:
    """The network of a registered version, read from its arrays (no pickle).

    A version registered with a ``weights_sha256`` tag must have exactly those weights bytes:
    the version is found by a name (an alias), so its content is checked before it is used
    (:class:`ValueError` naming the version otherwise)."""
    mv = client.get_model_version(model_name, version)
    tags = mv.tags or {}
    uri = f"models:/{tags[models.TAG_MODEL_ID]}" if models.TAG_MODEL_ID in tags else mv.source
    return models.load_network(client, uri, tags.get(TAG_WEIGHTS_SHA256), f"model {model_name!r} version {version}")


def champion(client: MlflowClient, model_name: str, alias: str):
    """The version the alias points to, or None."""
    try:
        return client.get_model_version_by_alias(model_name, alias)
    except MlflowException:
        return None


def _data_of_version(client: MlflowClient, mv) -> tuple[str | None, str | None]:
    """(train digest, test digest) a version was trained and tested on: its tags, else its run's params."""
    tags = mv.tags or {}
    train, test = tags.get("train_digest"), tags.get("test_digest")
    if train is None or test is None:
        try:
            params = client.get_run(mv.run_id).data.params
        except MlflowException:
            params = {}
        train, test = train or params.get("train_digest"), test or params.get("test_digest")
    return train, test


def champion_data(uri: str, model_name: str, alias: str) -> dict | None:
    """What the champion was trained and tested on: {version, run_id, train_digest,
    test_digest}; None while the alias names no version."""
    client = store.client(uri)
    mv = champion(client, model_name, alias)
    if mv is None:
        return None
    train, test = _data_of_version(client, mv)
    return {"version": str(mv.version), "run_id": mv.run_id, "train_digest": train, "test_digest": test}


def _correct(net: Network, test_pixels: np.ndarray, test_labels: np.ndarray) -> np.ndarray:
    """Per-record correctness (m,) bool of ``net`` on raw uint8 pixels."""
    return net.predict(scale_inputs(test_pixels, net.config.dtype)) == np.asarray(test_labels)


def _wait_for_earlier_decisions(client: MlflowClient, model_name: str, version: str,
                                timeout: float = DECISION_WAIT_SECONDS) -> list[str]:
    """Wait until every earlier version of the model, created in the last ``timeout`` seconds,
    has its decision recorded (version tag ``mynn.promotion``, written right after the alias
    moved); return the versions still undecided when ``timeout`` ran out (a registration
    that crashed, or one made by other means), else [].

    Without this, two registrations at the same moment both read the same champion (or none),
    both move the alias and the last one wins, better or not; and SQLite may even refuse the
    second alias write (UNIQUE constraint failed), leaving a version without a decision.
    """
    deadline = time.monotonic() + timeout
    while True:
        since = int((time.time() - timeout) * 1000)
        pending = sorted((mv for mv in client.search_model_versions(_name_is(model_name))
                          if int(mv.version) < int(version) and mv.creation_timestamp >= since
                          and "mynn.promotion" not in (mv.tags or {})), key=lambda mv: int(mv.version))
        if not pending or time.monotonic() >= deadline:
            return [str(mv.version) for mv in pending]
        time.sleep(0.2)


def _name_is(model_name: str) -> str:
    """The search filter for one model's versions (quoted with whichever quote the name lacks)."""
    quote = '"' if "'" in model_name else "'"
    return f"name = {quote}{model_name}{quote}"


def _short(digest: str | None) -> str:
    return "unknown" if not digest else digest[:12]


def _version_description(performance: float, records: int, test_digest: str, decision: str,
                         run_url: str | None) -> str:
    """The version's description in the registry UI: its score, the decision and its run."""
    run = f"\n\nTrained in [its MLflow run]({run_url})." if run_url else ""
    return (f"performance **{performance:.4f}** on {records:,} test records (test data {test_digest[:12]})."
            f"\n\n{decision[0].upper()}{decision[1:]}{run}")


def _decided_version(client: MlflowClient, model_name: str, run_id: str, alias: str) -> Registration | None:
    """The registration already made of run ``run_id`` under ``model_name`` (a version with its
    decision recorded), rebuilt from the version's tags; None if there is none."""
    try:
        versions = client.search_model_versions(f"{_name_is(model_name)} and run_id = '{run_id}'")
    except MlflowException:  # (no such model yet)
        return None
    for mv in sorted(versions, key=lambda v: int(v.version)):
        tags = mv.tags or {}
        if "mynn.promotion" not in tags or tags.get("mynn.run_id") != run_id:
            continue
        decision, _, reason = tags["mynn.promotion"].partition(": ")

        def num(key, kind=float):
            return kind(tags[key]) if key in tags else None
        return Registration(model_name, str(mv.version), alias, decision == "promoted", reason, float(tags["performance"]),
                            tags.get("champion_version"), num("champion_performance"), p_value=num("p_value"),
                            b=num("mcnemar_b", int), c=num("mcnemar_c", int), rule=tags.get("rule", "mcnemar"),
                            alpha=num("alpha") or DEFAULT_ALPHA)
    return None


def _fmt(value) -> str:
    return "none" if value is None else repr(value) if isinstance(value, float) else str(value)


def register(client: MlflowClient, run_id: str, model_name: str, model_uri: str, *,
             performance: float, test_pixels: np.ndarray, test_labels: np.ndarray, test_digest: str,
             alias: str = "champion", run_url: str | None = None,
             network: Network | str | os.PathLike | None = None,
             promotion: Promotion = DEFAULT_RULE, alpha: float = DEFAULT_ALPHA,
             train_digest: str | None = None) -> Registration:
    """Register the run's model as a new version and decide on the alias.

    test_pixels (m, 784) uint8 and test_labels (m,) are the test set the new model was
    scored on; the new model (``network``: a Network or a weights path; None: the run's
    logged ``model/``) and the champion are both scored on these records here, per record.
    ``performance`` must be the new model's score on them (checked; ValueError otherwise).

    ``promotion``:
      the rule of :func:`mynn.promotion.decide` ("mcnemar" by default, or "at-least"); with no
      champion yet the alias moves.

    Recorded on the run: tags ``mynn.model_version``, ``mynn.promotion`` (decision: reason),
    ``mynn.promotion_p_value``, ``mynn.champion_performance`` and the metric
    ``promotion_p_value`` (when there is a champion); on the version: tags ``performance``,
    ``test_digest``, ``train_digest``, ``weights_sha256``, ``mynn.promotion``, ``p_value``,
    ``champion_version``, ``champion_performance``, ``alpha``, ``rule``, ``mcnemar_b``,
    ``mcnemar_c``.

    Data: a champion tested on another test set (another ``test_digest``) is not this
    model's rival: the alias does not move, and the decision says so with both data digests.
    A champion trained on other training data (``train_digest``) is compared as usual, and
    the decision says that the training data differ. Both cases are tagged
    (``mynn.data_differs``, ``mynn.champion_train_digest``, ``mynn.champion_test_digest``)
    on the run and the version.
    """
    check_model_name(model_name)
    check_alias(alias)
    try:
        promotion_rules.check_rule(promotion)
        alpha = promotion_rules.check_alpha(alpha)
    except ValueError as exc:
        raise ValueError(f"register: {exc}") from None
    test_labels = np.asarray(test_labels)
    if len(test_pixels) != len(test_labels) or len(test_labels) == 0:
        raise ValueError(f"register: {len(test_pixels)} test rows but {len(test_labels)} labels")
    if network is None:
        new_net = models.load_network(client, model_uri)
    else:
        new_net = network if isinstance(network, Network) else Network.load(network)
    new_correct = _correct(new_net, test_pixels, test_labels)
    new_perf = float(np.mean(new_correct))
    if not np.isclose(new_perf, performance, rtol=0.0, atol=1e-12):
        raise ValueError(f"register: performance {performance!r} given, but the new model scores {new_perf!r} "
                         f"on the {len(test_labels)} test records given")

    done = _decided_version(client, model_name, run_id, alias)
    if done is not None:  # a retry of a registration that completed: not a second version
        return done
    try:
        client.create_registered_model(model_name, description="The network of 'Make Your Own Neural Network' (mynn)")
    except MlflowException as exc:
        if "already exists" not in str(exc).lower() and "RESOURCE_ALREADY_EXISTS" not in str(exc):
            raise
    tags = {"performance": f"{performance:.6f}", "test_digest": test_digest, "mynn.run_id": run_id}
    if train_digest:
        tags["train_digest"] = train_digest
    if network is not None and not isinstance(network, Network):
        tags[TAG_WEIGHTS_SHA256] = sha256_file(network)
    if run_url:
        tags["mynn.run_url"] = run_url
    model_id = models.model_id(model_uri)
    if model_id is not None:
        tags[models.TAG_MODEL_ID] = model_id
    # (the source is the LoggedModel's artifact location: MLflow's SQL registry resolves a
    # models:/<id> source through the process-wide tracking URI, not this client's, and keeps no
    # model_id of its own; the LoggedModel's mlflow.modelVersions tag is the UI's link)
    mv = client.create_model_version(model_name, source=models.artifact_uri(client, model_uri), run_id=run_id,
                                     tags=tags, model_id=model_id)
    client.set_tag(run_id, "mynn.model_version", f"{model_name}/{mv.version}")

    moved = False
    try:
        undecided = _wait_for_earlier_decisions(client, model_name, str(mv.version))
        current = champion(client, model_name, alias)
        champ_perf = test = None
        data_tags: dict[str, str] = {}
        champ_train = champ_test = None
        if current is not None:
            champ_train, champ_test = _data_of_version(client, current)
            differs = [name for name, ours, theirs in (("train", train_digest, champ_train), ("test", test_digest, champ_test))
                       if ours and theirs and ours != theirs]
            data_tags = {"mynn.data_differs": ",".join(differs) or "no",
                         "mynn.champion_train_digest": _fmt(champ_train), "mynn.champion_test_digest": _fmt(champ_test)}
        if current is None:
            promoted, reason = True, f"no '{alias}' yet"
        elif data_tags["mynn.data_differs"] in ("test", "train,test"):
            promoted = False
            reason = (f"{alias} v{current.version} was trained and tested on other data (train {_short(champ_train)}, "
                      f"test {_short(champ_test)}) than this version (train {_short(train_digest)}, test "
                      f"{_short(test_digest)}): not a better model of the same data; not compared "
                      f"(register it under another model name, or move the alias by hand if meant)")
        else:
            old_correct = _correct(load_version_network(client, model_name, current.version), test_pixels, test_labels)
            versus = f"{alias} v{current.version} on the same {len(test_labels)} test records ({test_digest[:12]})"
            ruling = promotion_rules.decide(promotion, alpha, new_correct, old_correct, versus)
            promoted, reason, champ_perf, test = (ruling.promoted, ruling.reason,
                                                  ruling.champion_performance, ruling.test)
        if current is not None and data_tags["mynn.data_differs"] == "train":
            reason += (f"; note: trained on other training data ({_short(train_digest)}) than {alias} "
                       f"v{current.version} ({_short(champ_train)}), compared on the same test set")
        if undecided:
            reason += f" (did not wait longer for undecided version(s) {', '.join(undecided)})"
        if promoted:
            client.set_registered_model_alias(model_name, alias, mv.version)
            moved = True
        decision = "promoted" if promoted else "not promoted"
        p_value = None if test is None else test.p_value
        champ_version = None if current is None else str(current.version)
        version_tags = {
            "mynn.promotion": f"{decision}: {reason}", "rule": promotion, "alpha": _fmt(alpha),
            "p_value": _fmt(p_value), "performance": f"{performance:.6f}",
            "champion_version": _fmt(champ_version), "champion_performance": _fmt(champ_perf),
            "mcnemar_b": _fmt(None if test is None else test.b), "mcnemar_c": _fmt(None if test is None else test.c),
            **data_tags,
        }
        for key, value in version_tags.items():
            if value != "none":  # (no champion: no p-value, no champion's score; absent, not "none")
                client.set_model_version_tag(model_name, mv.version, key, value)
        client.update_model_version(model_name, mv.version, description=_version_description(
            performance, len(test_labels), test_digest, f"{decision}: {reason}", run_url))
        run_tags = {"mynn.promotion": f"{decision}: {reason}", "mynn.promotion_p_value": _fmt(p_value),
                    "mynn.champion_performance": _fmt(champ_perf), **data_tags}
        run_tags = {k: v for k, v in run_tags.items() if v != "none"}
        models.link_version(client, model_uri, model_name, str(mv.version))
        ts = now_ms()
        client.log_batch(run_id, tags=[RunTag(k, v) for k, v in run_tags.items()],
                         metrics=[] if p_value is None else [Metric("promotion_p_value", p_value, ts, 0)])
    except BaseException:
        client.delete_tag(run_id, "mynn.model_version")
        if not moved:  # no version is left behind without a decision
            client.delete_model_version(model_name, mv.version)
        raise
    return Registration(model_name, str(mv.version), alias, promoted, reason, performance, champ_version,
                        champ_perf, p_value=p_value, b=None if test is None else test.b,
                        c=None if test is None else test.c, rule=promotion, alpha=alpha)


def register_run(uri: str, run_id: str, weights: Path, data: PreparedData, performance: float, *,
                 model_name: str = "mynn", alias: str = "champion", promotion: Promotion = DEFAULT_RULE,
                 alpha: float = DEFAULT_ALPHA, model_uri: str | None = None) -> Registration:
    """:func:`register` run ``run_id``'s model (``model_uri``: its LoggedModel; None: log one of
    the weights file now), scoring it and the champion on the prepared test set of ``data``."""
    client = store.client(uri)
    test = load_npy(data.test.directory)
    if model_uri is None:
        model_uri = log_model(client, run_id, Path(weights), test.pixels[:2])
    experiment_id = client.get_run(run_id).info.experiment_id
    return register(client, run_id, model_name, model_uri, performance=performance, test_pixels=test.pixels,
                    test_labels=test.labels, test_digest=data.test.digest, alias=alias,
                    run_url=store.run_ui_url(uri, experiment_id, run_id), network=weights, promotion=promotion,
                    alpha=alpha, train_digest=data.train.digest)
