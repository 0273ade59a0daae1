"""The flow parameters' form: every bounded field states its bounds in words (the Prefect UI
form shows the description, not the schema's bounds), matching the schema that enforces them."""
from __future__ import annotations

from flows.params import Alpha, SweepGrid, TrainConfig, bounds_text
from pydantic import TypeAdapter


def test_bounds_text_words_and_numbers():
    assert bounds_text({"gt": 0.0, "le": 100.0}) == "more than 0, at most 100"
    assert bounds_text({"ge": 1, "le": 100_000}) == "at least 1, at most 100,000"


def test_every_bounded_field_says_its_bounds():
    keys = {"exclusiveMinimum": "gt", "minimum": "ge", "exclusiveMaximum": "lt", "maximum": "le"}
    schema = TrainConfig.model_json_schema()["properties"]
    bounded = {name: {keys[k]: v for k, v in prop.items() if k in keys} for name, prop in schema.items()}
    bounded = {name: b for name, b in bounded.items() if b}
    assert {"hidden_nodes", "learning_rate", "epochs", "seed", "batch_size"} <= set(bounded)
    for name, b in bounded.items():
        assert schema[name]["description"].endswith(f"({bounds_text(b)})"), name
    grid = SweepGrid.model_json_schema()["properties"]["learning_rate"]["description"]
    assert grid.endswith("(more than 0, at most 100)")
    alpha = TypeAdapter(Alpha).json_schema()
    assert "more than 0" in alpha["description"] and alpha["exclusiveMinimum"] == 0
