"""vaelib.notebook: the Markdown tables, the share format and the settings line the chapters print."""

from __future__ import annotations

import pytest

import torch

from vaelib.experiments import PROFILES
from vaelib.notebook import OUTPUT_WIDTH, Session, table
from vaelib.wording import percent_and_error


def test_table_writes_a_pipe_table_with_one_alignment_per_column():
    shown = table(["model", "NLL", "note"], [["`vae-z2`", 101.25, "a|b"], ["mog", 99, ""]], align="lrc")
    assert shown.data.splitlines() == [
        "| model | NLL | note |",
        "| --- | ---: | :---: |",
        "| `vae-z2` | 101.25 | a\\|b |",  # a "|" in a cell would start a new column
        "| mog | 99 |  |",
    ]
    assert table(["a", "b"], []).data.splitlines()[1] == "| --- | --- |"
    # a narrow column may break before the "±", never between it and its number
    assert table(["NLL"], [["84.68 ± 0.22"]]).data.splitlines()[2] == "| 84.68 ±\u00a00.22 |"


def test_table_refuses_rows_and_alignments_that_do_not_fit_the_header():
    with pytest.raises(ValueError, match="a row has 1 cells but the header 2"):
        table(["a", "b"], [["only one"]])
    with pytest.raises(ValueError, match="align needs one of l, r, c"):
        table(["a", "b"], [], align="lx")
    with pytest.raises(ValueError, match="align needs"):
        table(["a", "b"], [], align="l")


def test_percent_and_error():
    assert percent_and_error((0.1234, 0.0041)) == "12.3% ± 0.4"


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_the_settings_printed_atop_a_chapter_fit_its_output_box(name):
    profile = PROFILES[name]
    lines = str(Session(profile, torch.device("cpu"), 0)).splitlines()
    assert lines[0] == f"profile: {name}"
    assert max(map(len, lines)) <= OUTPUT_WIDTH, lines
    assert " ".join(line.strip() for line in lines[1:-1]) == profile.description  # nothing lost
