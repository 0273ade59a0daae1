"""mynn.tables: the one markdown table writer."""
from mynn.tables import markdown_table


def test_a_table_has_header_rule_and_rows_with_pipes_escaped():
    got = markdown_table(["a", "b"], [[1, "x|y"], [2.5, None]])
    assert got == "| a | b |\n|---|---|\n| 1 | x\\|y |\n| 2.5 | None |\n"


def test_right_aligned_columns_and_no_rows():
    assert markdown_table(["n"], [], align="right") == "| n |\n|---:|\n"
