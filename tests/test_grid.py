"""mynn.grid: expanding a grid into points, identifying points, planning the trainings (pure)."""
from __future__ import annotations

import dataclasses
import re

import pytest

from mynn.config import NetworkConfig
from mynn.grid import FIELDS, Copy, Finished, Training, code_digest, expand, group_id, plan, plan_points, point_id

TRAIN, TEST = "a" * 64, "b" * 64


def cfg(**kw) -> NetworkConfig:
    return NetworkConfig(**kw)


# ------------------------------------------------------------------------------------ expand


def test_expand_is_the_cartesian_product_in_config_field_order():
    # the grid lists learning_rate first; the order follows NetworkConfig (hidden_nodes is
    # the outer loop), values in the order given
    got = expand({"learning_rate": [0.3, 0.1], "hidden_nodes": [20, 10]})
    assert [(c.hidden_nodes, c.learning_rate) for c in got] == [(20, 0.3), (20, 0.1), (10, 0.3), (10, 0.1)]
    # fields not in the grid keep the base's values (the book's defaults without a base)
    assert all(c.epochs == 5 and c.seed == 0 and c.dtype == "float64" for c in got)


def test_expand_is_stable_across_calls_and_dict_orders():
    a = expand({"hidden_nodes": [10, 20], "seed": [2, 0, 1], "epochs": [3, 1]})
    b = expand({"epochs": [3, 1], "seed": [2, 0, 1], "hidden_nodes": [10, 20]})
    assert a == b
    assert len(a) == 2 * 3 * 2
    assert [(c.hidden_nodes, c.epochs, c.seed) for c in a[:6]] == [
        (10, 3, 2), (10, 3, 0), (10, 3, 1), (10, 1, 2), (10, 1, 0), (10, 1, 1)]


def test_expand_uses_the_base_for_other_fields():
    base = NetworkConfig(hidden_nodes=7, learning_rate=0.5, epochs=2, seed=9)
    got = expand({"seed": [0, 1]}, base=base)
    assert got == [dataclasses.replace(base, seed=0), dataclasses.replace(base, seed=1)]


def test_expand_drops_duplicates_keeping_the_first_occurrence():
    got = expand({"hidden_nodes": [20, 10, 20, 10.0], "learning_rate": [0.1, 0.1]})
    # 10.0 becomes the whole number 10 in NetworkConfig, so it is the same point as 10
    assert [(c.hidden_nodes, c.learning_rate) for c in got] == [(20, 0.1), (10, 0.1)]
    assert len(set(got)) == len(got)


def test_expand_with_an_empty_grid_gives_the_base():
    assert expand({}) == [NetworkConfig()]


def test_expand_refuses_unknown_fields_naming_them():
    with pytest.raises(ValueError, match="hiden_nodes"):
        expand({"hiden_nodes": [10], "learning_rate": [0.1]})


@pytest.mark.parametrize("values", [[], (), "10"])
def test_expand_refuses_empty_lists_and_strings_naming_the_field(values):
    with pytest.raises(ValueError, match=r"grid\.hidden_nodes"):
        expand({"learning_rate": [0.1], "hidden_nodes": values})


@pytest.mark.parametrize("field, bad", [("learning_rate", -0.1), ("learning_rate", 0), ("hidden_nodes", 0),
                                        ("epochs", 2.5), ("dtype", "float16"), ("seed", -1)])
def test_expand_refuses_invalid_values_naming_the_field(field, bad):
    good = {"learning_rate": 0.1, "hidden_nodes": 10, "epochs": 1, "dtype": "float64", "seed": 0}[field]
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        expand({field: [good, bad]})


def test_fields_are_the_config_fields_in_their_order():
    # the order is expand's loop order (the first field is the outer loop)
    assert FIELDS == ("hidden_nodes", "learning_rate", "epochs", "seed", "dtype", "batch_size",
                      "batch_reduction", "backprop", "validation_records", "patience")


# -------------------------------------------------------------------------------------- plan


def test_plan_groups_points_that_differ_only_in_epochs():
    points = [cfg(hidden_nodes=10, epochs=1), cfg(hidden_nodes=10, epochs=3), cfg(hidden_nodes=20, epochs=2),
              cfg(hidden_nodes=10, epochs=2), cfg(hidden_nodes=10, epochs=3)]
    got = plan(points)
    assert got == [Training(cfg(hidden_nodes=10, epochs=3), (1, 2, 3)),
                   Training(cfg(hidden_nodes=20, epochs=2), (2,))]


def test_plan_keeps_points_apart_when_anything_but_epochs_differs():
    points = [cfg(epochs=e, seed=s, learning_rate=lr) for s in (0, 1) for lr in (0.1, 0.2) for e in (4, 1)]
    got = plan(points)
    assert len(got) == 4
    assert all(t.config.epochs == 4 and t.epochs == (1, 4) for t in got)
    assert {(t.config.seed, t.config.learning_rate) for t in got} == {(0, 0.1), (0, 0.2), (1, 0.1), (1, 0.2)}
    # every point is covered by exactly one training
    covered = [dataclasses.replace(t.config, epochs=e) for t in got for e in t.epochs]
    assert sorted(covered, key=repr) == sorted(set(points), key=repr)


def test_plan_of_nothing_is_nothing():
    assert plan([]) == []


# ------------------------------------------------------------------------ point and group ids


def test_point_id_is_deterministic_and_changes_with_config_data_and_code():
    c = cfg(hidden_nodes=10, learning_rate=0.3, epochs=2)
    pid = point_id(c, TRAIN, TEST, "code1")
    assert pid == point_id(cfg(hidden_nodes=10, learning_rate=0.3, epochs=2), TRAIN, TEST, "code1")
    assert re.fullmatch(r"[0-9a-f]{32}", pid)
    others = [
        point_id(dataclasses.replace(c, epochs=3), TRAIN, TEST, "code1"),
        point_id(dataclasses.replace(c, seed=1), TRAIN, TEST, "code1"),
        point_id(dataclasses.replace(c, hidden_nodes=11), TRAIN, TEST, "code1"),
        point_id(dataclasses.replace(c, learning_rate=0.2), TRAIN, TEST, "code1"),
        point_id(dataclasses.replace(c, dtype="float32"), TRAIN, TEST, "code1"),
        point_id(c, "c" * 64, TEST, "code1"),
        point_id(c, TRAIN, "c" * 64, "code1"),
        point_id(c, TEST, TRAIN, "code1"),  # train and test swapped
        point_id(c, TRAIN, TEST, "code2"),
    ]
    assert pid not in others
    assert len(set(others)) == len(others)


def test_group_id_ignores_epochs_but_nothing_else():
    c = cfg(hidden_nodes=10, learning_rate=0.3, epochs=2)
    gid = group_id(c, TRAIN, TEST, "code1")
    assert all(group_id(dataclasses.replace(c, epochs=e), TRAIN, TEST, "code1") == gid for e in (1, 3, 10))
    assert group_id(dataclasses.replace(c, seed=1), TRAIN, TEST, "code1") != gid
    assert group_id(dataclasses.replace(c, learning_rate=0.2), TRAIN, TEST, "code1") != gid
    assert group_id(c, "c" * 64, TEST, "code1") != gid
    assert group_id(c, TRAIN, "c" * 64, "code1") != gid
    assert group_id(c, TRAIN, TEST, "code2") != gid
    # a group id is never mistaken for the id of a point (even the 1-epoch point)
    assert gid != point_id(dataclasses.replace(c, epochs=1), TRAIN, TEST, "code1")


def test_code_digest_is_stable_and_short_hex():
    v = code_digest()
    assert v == code_digest()
    assert re.fullmatch(r"[0-9a-f]{16}", v)


# ------------------------------------------------------------------------------ plan_points


def finished(run_id: str, config: NetworkConfig, origin: str = "trained", epochs_trained: int | None = None,
             train: str = TRAIN, code: str = "c1") -> Finished:
    params = {k: str(v) for k, v in config.to_dict().items()}
    params.update(train_digest=train, test_digest=TEST, code_version=code)
    return Finished(run_id, origin, epochs_trained, params)


def test_plan_points_reuses_derives_and_trains_the_rest():
    done = cfg(hidden_nodes=10, epochs=1)
    longer = cfg(hidden_nodes=20, epochs=5)
    by_point = {point_id(done, TRAIN, TEST, "c1"): finished("r-done", done)}
    by_group = {group_id(longer, TRAIN, TEST, "c1"): [finished("r-long", longer, epochs_trained=5)]}
    wanted = [done, cfg(hidden_nodes=20, epochs=3), cfg(hidden_nodes=30, epochs=1), cfg(hidden_nodes=30, epochs=2)]
    got = plan_points(wanted, TRAIN, TEST, "c1", by_point, by_group)
    assert got.copies == [Copy(done, "reused", "r-done"), Copy(cfg(hidden_nodes=20, epochs=3), "derived", "r-long")]
    assert got.trainings == [Training(cfg(hidden_nodes=30, epochs=2), (1, 2))]
    assert got.refused == []


def test_plan_points_checks_what_a_point_id_stands_for():
    point = cfg(hidden_nodes=10, epochs=1)
    # a run carrying this point's id whose parameters are another point (other training data)
    by_point = {point_id(point, TRAIN, TEST, "c1"): finished("r-other", point, train="f" * 64)}
    # a longer training of the group, but with other code
    by_group = {group_id(point, TRAIN, TEST, "c1"): [finished("r-old-code", cfg(hidden_nodes=10, epochs=4),
                                                              epochs_trained=4, code="c0")]}
    got = plan_points([point], TRAIN, TEST, "c1", by_point, by_group)
    assert got.copies == []
    assert got.trainings == [Training(point, (1,))]
    assert len(got.refused) == 1 and "r-other" in got.refused[0]


def test_plan_points_does_not_derive_more_epochs_than_were_trained():
    by_group = {group_id(cfg(), TRAIN, TEST, "c1"): [finished("r-short", cfg(epochs=2), epochs_trained=2)]}
    got = plan_points([cfg(epochs=3)], TRAIN, TEST, "c1", {}, by_group)
    assert got.copies == [] and got.trainings == [Training(cfg(epochs=3), (3,))]
