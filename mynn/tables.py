"""Markdown tables: the one way reports, summaries and artifacts write a table."""
from __future__ import annotations

from collections.abc import Iterable, Sequence


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[object]], align: str = "") -> str:
    """A markdown table (ends with a newline); cells are ``str(value)``, with ``|`` escaped.

    ``align``: "" (left, ``---``) or "right" (``---:``) for every column."""
    def line(cells: Iterable[object]) -> str:
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    rule = "|" + "|".join(("---:" if align == "right" else "---") for _ in header) + "|"
    return "\n".join([line(header), rule, *(line(r) for r in rows)]) + "\n"
