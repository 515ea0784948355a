"""How the chapters' code reads: short cells that do one thing, lines that fit the code box,
and helpers defined once (in vaelib, not in two chapters).

Measured on the reviewed MyST sources, book/NN_name.md, code cells only:

* cells: number of code cells;
* median / max: non-blank lines per code cell (comments count, cell options do not);
* wide: code lines longer than MAX_LINE characters (they run off the site's code box);
* functions defined (`def name`) in more than one chapter.

Targets (issue 10): median <= MAX_MEDIAN, no cell over MAX_CELL lines, no line over
MAX_LINE characters, no function defined in two chapters. Every chapter in RESTRUCTURED
is held to the first three; no function may be defined in two chapters anywhere. Add a
chapter to RESTRUCTURED once its code cells meet the targets.

    python tests/test_book_style.py      # prints the per-chapter table
"""

from __future__ import annotations

import re
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTER = re.compile(r"^\d\d_\w+$")
DEF = re.compile(r"^\s*(?:async\s+)?def\s+(\w+)\s*\(", re.MULTILINE)

MAX_MEDIAN = 8  # non-blank lines in the median code cell
MAX_CELL = 30  # non-blank lines in the longest code cell
MAX_LINE = 88  # characters in a code line

# Chapters whose code cells have been restructured to the targets.
RESTRUCTURED = (
    "01_vae", "02_multimodality", "03_mog_prior", "04_kl_approximation", "05_likelihood", "06_beyond",
)


@dataclass
class ChapterStyle:
    """The style numbers of one chapter's code cells."""

    name: str
    cell_lines: list[int] = field(default_factory=list)
    wide_lines: list[tuple[int, int]] = field(default_factory=list)  # (cell number, length)
    functions: list[str] = field(default_factory=list)

    @property
    def cells(self) -> int:
        return len(self.cell_lines)

    @property
    def median(self) -> float:
        return statistics.median(self.cell_lines) if self.cell_lines else 0.0

    @property
    def longest(self) -> int:
        return max(self.cell_lines, default=0)

    def over(self, limit: int = MAX_CELL) -> list[tuple[int, int]]:
        """(cell number, non-blank lines) of every code cell longer than `limit`."""
        return [(i, n) for i, n in enumerate(self.cell_lines) if n > limit]


def chapter_paths(book: Path = BOOK) -> list[Path]:
    return sorted(p for p in book.glob("*.md") if CHAPTER.match(p.stem))


def measure(path: Path) -> ChapterStyle:
    """Count the code cells of one MyST chapter."""
    style = ChapterStyle(path.stem)
    notebook = jupytext.read(path)
    code = [cell.source for cell in notebook.cells if cell.cell_type == "code"]
    for number, source in enumerate(code):
        lines = source.splitlines()
        style.cell_lines.append(sum(1 for line in lines if line.strip()))
        style.wide_lines += [(number, len(line)) for line in lines if len(line) > MAX_LINE]
        style.functions += DEF.findall(source)
    return style


def measure_book(book: Path = BOOK) -> dict[str, ChapterStyle]:
    return {path.stem: measure(path) for path in chapter_paths(book)}


def shared_functions(styles: dict[str, ChapterStyle]) -> dict[str, list[str]]:
    """Function names defined in more than one chapter, with the chapters that define them."""
    where: dict[str, list[str]] = {}
    for name, style in styles.items():
        for function in sorted(set(style.functions)):
            where.setdefault(function, []).append(name)
    return {function: names for function, names in sorted(where.items()) if len(names) > 1}


def report(styles: dict[str, ChapterStyle]) -> str:
    """The per-chapter table that `python tests/test_book_style.py` prints."""
    header = f"{'chapter':22s} {'cells':>5s} {'median':>6s} {'max':>4s} {'>30':>4s} {'>88ch':>5s} {'defs':>4s}"
    lines = [header, "-" * len(header)]
    for name, s in styles.items():
        lines.append(
            f"{name:22s} {s.cells:5d} {s.median:6.1f} {s.longest:4d} {len(s.over()):4d} "
            f"{len(s.wide_lines):5d} {len(s.functions):4d}"
        )
    every = [n for s in styles.values() for n in s.cell_lines]
    lines.append("-" * len(header))
    lines.append(
        f"{'all chapters':22s} {len(every):5d} {statistics.median(every):6.1f} {max(every):4d} "
        f"{sum(len(s.over()) for s in styles.values()):4d} "
        f"{sum(len(s.wide_lines) for s in styles.values()):5d} "
        f"{sum(len(s.functions) for s in styles.values()):4d}"
    )
    shared = shared_functions(styles)
    lines.append("functions defined in more than one chapter: " + (
        ", ".join(f"{f} ({', '.join(n)})" for f, n in shared.items()) if shared else "none"))
    return "\n".join(lines)


STYLES = measure_book()


@pytest.mark.parametrize("name", RESTRUCTURED)
def test_restructured_chapter_has_short_cells(name: str) -> None:
    style = STYLES[name]
    assert style.median <= MAX_MEDIAN, f"{name}: median code cell {style.median} > {MAX_MEDIAN}"
    assert not style.over(), f"{name}: code cells (number, lines) over {MAX_CELL}: {style.over()}"


@pytest.mark.parametrize("name", RESTRUCTURED)
def test_restructured_chapter_lines_fit_the_code_box(name: str) -> None:
    wide = STYLES[name].wide_lines
    assert not wide, f"{name}: code lines (cell number, length) over {MAX_LINE} characters: {wide}"


def test_no_function_is_defined_in_two_chapters() -> None:
    shared = shared_functions(STYLES)
    assert not shared, f"defined in more than one chapter (move them into vaelib): {shared}"


# --- the measurement itself, on a chapter made here ------------------------------------------

SAMPLE = """\
---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---

# A chapter

```{code-cell} ipython3
:tags: [hide-input]

def helper(x):
    # a comment counts

    return x
```

```{code-cell} ipython3
---
mystnb:
  markdown_format: gfm
---
y = helper(1)
```
"""


def test_measure_counts_code_lines_wide_lines_and_definitions(tmp_path: Path) -> None:
    (tmp_path / "01_one.md").write_text(SAMPLE, encoding="utf-8")
    wide = SAMPLE.replace("y = helper(1)", "y = helper(1)  # " + "x" * 80)
    (tmp_path / "02_two.md").write_text(wide, encoding="utf-8")
    (tmp_path / "intro.md").write_text("# not a chapter\n", encoding="utf-8")
    styles = measure_book(tmp_path)
    assert list(styles) == ["01_one", "02_two"]
    one = styles["01_one"]
    assert one.cell_lines == [3, 1] and one.median == 2 and one.longest == 3
    assert one.wide_lines == [] and one.functions == ["helper"]
    assert styles["02_two"].wide_lines == [(1, len("y = helper(1)  # ") + 80)]
    assert shared_functions(styles) == {"helper": ["01_one", "02_two"]}
    assert styles["02_two"].over(2) == [(0, 3)]
    assert "helper (01_one, 02_two)" in report(styles)


def main() -> int:
    print(report(STYLES))
    return 0


if __name__ == "__main__":
    sys.exit(main())
