"""The one typed configuration of a network and its training."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Literal

DType = Literal["float64", "float32"]
Reduction = Literal["mean", "sum"]
Backprop = Literal["book", "exact"]


def _field(default: Any, doc: str, **bounds: float) -> Any:
    """A config field: its default, a one-line description and its bounds (ge/gt/le)."""
    return field(default=default, metadata={"doc": doc, **bounds})


@dataclass(frozen=True)
class NetworkConfig:
    """Hyper-parameters of the book's three-layer network and of its training.

    The defaults are the book's final code: 200 hidden nodes, lr 0.1, 5 epochs. Every
    option beyond the book (float32, mini-batches, exact backprop, a validation set, early
    stopping) is off by default.
    """

    hidden_nodes: int = _field(200, "Hidden nodes H: wih is (H, 784), who is (10, H)", ge=1, le=100_000)
    learning_rate: float = _field(0.1, "Learning rate: step size of every weight update", gt=0.0, le=100.0)
    epochs: int = _field(5, "Epochs: passes over the training records, in file order", ge=1, le=1000)
    seed: int = _field(0, "Seed of numpy's Generator that draws the initial weights", ge=0, le=2**63 - 1)
    dtype: DType = _field("float64", "Arithmetic precision: float64 (the book's) or float32")
    batch_size: int = _field(1, "Records per weight update; 1 is the book's per-record rule", ge=1, le=60_000)
    batch_reduction: Reduction = _field("mean", "With batch_size > 1: the update is the mean or the sum of the records' updates")
    backprop: Backprop = _field("book", "Hidden error: 'book' sends e_o back (the book), 'exact' sends e_o times o(1-o) (the gradient)")
    validation_records: int = _field(0, "Training records held out (chosen by the seed, mynn.validation) and scored after every epoch; 0: none, the book", ge=0, le=59_999)
    patience: int = _field(0, "Early stopping: stop after this many epochs without a better validation score and keep the best epoch's weights; 0: off", ge=0, le=1000)

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in ("dtype", "batch_reduction", "backprop"):
                allowed = {"dtype": ("float64", "float32"), "batch_reduction": ("mean", "sum"),
                           "backprop": ("book", "exact")}[f.name]
                if value not in allowed:
                    raise ValueError(f"NetworkConfig.{f.name}: {value!r} is not one of {allowed}")
                continue
            kind = int if f.type in ("int", int) else float
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError(f"NetworkConfig.{f.name}: {value!r} is not a number")
            if kind is int and not float(value).is_integer():
                raise ValueError(f"NetworkConfig.{f.name}: {value!r} is not a whole number")
            if not math.isfinite(float(value)):
                raise ValueError(f"NetworkConfig.{f.name}: {value!r} is not finite")
            bounds = f.metadata
            if "ge" in bounds and value < bounds["ge"]:
                raise ValueError(f"NetworkConfig.{f.name}: {value!r} is below {bounds['ge']}")
            if "gt" in bounds and value <= bounds["gt"]:
                raise ValueError(f"NetworkConfig.{f.name}: {value!r} must be above {bounds['gt']}")
            if "le" in bounds and value > bounds["le"]:
                raise ValueError(f"NetworkConfig.{f.name}: {value!r} is above {bounds['le']}")
            object.__setattr__(self, f.name, kind(value))
        if self.patience and not self.validation_records:
            raise ValueError(f"NetworkConfig.patience: {self.patience} needs a validation set (validation_records > 0)")

    @property
    def is_book_rule(self) -> bool:
        """True when training follows the book exactly (float64, per record, book backprop)."""
        return self.dtype == "float64" and self.batch_size == 1 and self.backprop == "book"

    def to_dict(self) -> dict[str, Any]:
        """All fields as plain JSON-able values."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "NetworkConfig":
        """Build from a dict; unknown keys are an error naming them."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - names)
        if unknown:
            raise ValueError(f"NetworkConfig: unknown field(s) {unknown}")
        return cls(**values)

    def run_name(self) -> str:
        """A short name from the parameters, e.g. ``h200-lr0.1-e5-s0`` (options appended)."""
        name = f"h{self.hidden_nodes}-lr{self.learning_rate:g}-e{self.epochs}-s{self.seed}"
        if self.dtype != "float64":
            name += "-f32"
        if self.batch_size != 1:
            name += f"-b{self.batch_size}{self.batch_reduction}"
        if self.backprop != "book":
            name += "-exact"
        if self.validation_records:
            name += f"-v{self.validation_records}"
        if self.patience:
            name += f"-p{self.patience}"
        return name
