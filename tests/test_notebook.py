"""vaelib.notebook: the Markdown tables and the share format the chapters print."""

from __future__ import annotations

import pytest

from vaelib.notebook import percent_and_error, table


def test_table_writes_a_pipe_table_with_one_alignment_per_column():
    shown = table(["model", "NLL", "note"], [["`vae-z2`", 101.25, "a|b"], ["mog", 99, ""]], align="lrc")
    assert shown.data.splitlines() == [
        "| model | NLL | note |",
        "| --- | ---: | :---: |",
        "| `vae-z2` | 101.25 | a\\|b |",  # a "|" in a cell would start a new column
        "| mog | 99 |  |",
    ]
    assert table(["a", "b"], []).data.splitlines()[1] == "| --- | --- |"


def test_table_refuses_rows_and_alignments_that_do_not_fit_the_header():
    with pytest.raises(ValueError, match="a row has 1 cells but the header 2"):
        table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="align needs one of l, r, c"):
        table(["a", "b"], [], align="lx")
    with pytest.raises(ValueError, match="align needs"):
        table(["a", "b"], [], align="l")


def test_percent_and_error():
    assert percent_and_error((0.1234, 0.0041)) == "12.3% ± 0.4"
