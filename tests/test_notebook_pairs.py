"""Each chapter is a jupytext pair, book/NN_name.md (MyST, reviewed) and book/NN_name.ipynb
(built, run by nbmake, opened on Colab). These tests fail when the two drift apart, when a
notebook carries outputs, or when the table of contents and the chapter files disagree.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTER = re.compile(r"^\d\d_\w+$")  # chapter stems look like 03_mog_prior

# Cell metadata that changes how the book renders or runs a cell, and so must match.
# Everything else (ids, jupytext bookkeeping, editor state) is ignored.
COMPARED_METADATA = ("tags", "mystnb")


def chapter_stems(book: Path = BOOK) -> list[str]:
    """Stems of every chapter file in `book`, whether it has its .md, its .ipynb, or both."""
    stems = {p.stem for p in book.glob("*.md")} | {p.stem for p in book.glob("*.ipynb")}
    return sorted(s for s in stems if CHAPTER.match(s))


def _cells(nb: nbformat.NotebookNode) -> list[tuple[str, str, dict]]:
    """(cell type, source with trailing blanks removed, compared metadata) for each cell."""
    out = []
    for cell in nb.cells:
        source = "\n".join(line.rstrip() for line in cell.source.strip().splitlines())
        meta = {k: cell.metadata[k] for k in COMPARED_METADATA if k in cell.metadata}
        out.append((cell.cell_type, source, meta))
    return out


def pair_differences(md_path: Path, ipynb_path: Path) -> list[str]:
    """Human-readable differences between a MyST .md chapter and its .ipynb twin (empty: in sync)."""
    md = jupytext.read(md_path)
    fmt = md.metadata.get("jupytext", {}).get("text_representation", {}).get("format_name")
    problems = [] if fmt == "myst" else [f"{md_path.name} is not a MyST notebook (jupytext format {fmt!r})"]
    a, b = _cells(md), _cells(jupytext.read(ipynb_path))
    if len(a) != len(b):
        problems.append(f"{md_path.name} has {len(a)} cells, {ipynb_path.name} has {len(b)}")
    for i, (ca, cb) in enumerate(zip(a, b)):
        where = f"cell {i}"
        if ca[0] != cb[0]:
            problems.append(f"{where}: type {ca[0]} in .md, {cb[0]} in .ipynb")
        if ca[1] != cb[1]:
            first = next(
                (n for n, (x, y) in enumerate(zip(ca[1].splitlines(), cb[1].splitlines())) if x != y),
                min(len(ca[1].splitlines()), len(cb[1].splitlines())),
            )
            problems.append(f"{where}: sources differ from line {first + 1} ({ca[1][:50]!r}...)")
        if ca[2] != cb[2]:
            problems.append(f"{where}: metadata {ca[2]} in .md, {cb[2]} in .ipynb")
    return problems


def output_problems(ipynb_path: Path) -> list[str]:
    """What makes a stored notebook not clean: outputs, execution counts, saved widget state."""
    raw = json.loads(ipynb_path.read_text(encoding="utf-8"))
    problems = []
    for i, cell in enumerate(raw.get("cells", [])):
        if cell.get("cell_type") != "code":
            continue
        if cell.get("outputs"):
            problems.append(f"cell {i} has {len(cell['outputs'])} output(s)")
        if cell.get("execution_count") is not None:
            problems.append(f"cell {i} has execution count {cell['execution_count']}")
    if "widgets" in raw.get("metadata", {}):
        problems.append("notebook metadata holds saved widget state")
    return problems


def toc_files(toc_path: Path) -> list[str]:
    """Every document named in a jupyter-book _toc.yml (root first), as written there."""
    toc = yaml.safe_load(toc_path.read_text(encoding="utf-8"))
    found = [toc["root"]]

    def walk(node: object) -> None:
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def toc_problems(root: Path) -> list[str]:
    """Disagreements between root/_toc.yml and the files in root/book."""
    entries = toc_files(root / "_toc.yml")
    problems = []
    for entry in entries:
        path = root / entry
        if path.suffix:
            problems.append(f"toc entry {entry!r} has an extension; chapters must resolve to their .ipynb")
            path = path.with_suffix("")
        if CHAPTER.match(path.name):
            if not path.with_suffix(".ipynb").exists():
                problems.append(f"toc chapter {entry!r} has no {path.name}.ipynb")
        elif not (path.with_suffix(".md").exists() or path.with_suffix(".ipynb").exists()):
            problems.append(f"toc page {entry!r} does not exist")
    listed = {str(Path(e).with_suffix("")) for e in entries}
    for nb in sorted((root / "book").glob("*.ipynb")):
        if str(nb.relative_to(root).with_suffix("")) not in listed:
            problems.append(f"{nb.relative_to(root)} is not in _toc.yml")
    return problems


# --- the repository's own chapters -------------------------------------------------------


@pytest.mark.parametrize("stem", chapter_stems())
def test_chapter_pair_in_sync(stem: str) -> None:
    md, ipynb = BOOK / f"{stem}.md", BOOK / f"{stem}.ipynb"
    assert md.exists(), f"{ipynb.name} has no MyST twin {md.name} (create it: jupytext --to myst {ipynb})"
    assert ipynb.exists(), f"{md.name} has no notebook twin {ipynb.name} (create it: jupytext --to ipynb {md})"
    problems = pair_differences(md, ipynb)
    assert not problems, f"{stem}: .md and .ipynb drifted (regenerate: jupytext --to ipynb {md}):\n" + "\n".join(problems)


@pytest.mark.parametrize("stem", [s for s in chapter_stems() if (BOOK / f"{s}.ipynb").exists()])
def test_chapter_notebook_has_no_outputs(stem: str) -> None:
    problems = output_problems(BOOK / f"{stem}.ipynb")
    assert not problems, f"{stem}.ipynb must be stored without outputs:\n" + "\n".join(problems)


def test_toc_matches_chapter_files() -> None:
    problems = toc_problems(ROOT)
    assert not problems, "\n".join(problems)


# --- the checks themselves, on pairs made here ---------------------------------------------

MYST_CHAPTER = """\
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

Some text with maths $x^2$.

```{code-cell} ipython3
:tags: [hide-output]

print("setup")
```

```{code-cell} ipython3
x = 1 + 1
x
```
"""


def _write_pair(folder: Path, stem: str = "01_demo") -> tuple[Path, Path]:
    md = folder / f"{stem}.md"
    md.write_text(MYST_CHAPTER, encoding="utf-8")
    ipynb = folder / f"{stem}.ipynb"
    jupytext.write(jupytext.read(md), ipynb)
    return md, ipynb


def _edit_notebook(ipynb: Path, edit) -> None:
    nb = nbformat.read(ipynb, as_version=4)
    edit(nb)
    nbformat.write(nb, ipynb)


def test_pair_check_accepts_a_pair_in_sync(tmp_path: Path) -> None:
    md, ipynb = _write_pair(tmp_path)
    # Metadata that Jupyter adds on its own (cell ids, collapsed state) is not drift.
    _edit_notebook(ipynb, lambda nb: nb.cells[1].metadata.update(collapsed=True))
    assert pair_differences(md, ipynb) == []
    assert output_problems(ipynb) == []


@pytest.mark.parametrize(
    "edit, expected",
    [
        (lambda nb: setattr(nb.cells[2], "source", "x = 1 + 2\nx"), "sources differ from line 1"),
        (lambda nb: nb.cells.pop(), "has 3 cells"),
        (lambda nb: nb.cells.__setitem__(0, nbformat.v4.new_raw_cell(nb.cells[0].source)), "type markdown in .md, raw"),
        (lambda nb: nb.cells[1].metadata.update(tags=[]), "metadata"),
    ],
    ids=["edited-source", "missing-cell", "changed-type", "dropped-tag"],
)
def test_pair_check_reports_drift(tmp_path: Path, edit, expected: str) -> None:
    md, ipynb = _write_pair(tmp_path)
    _edit_notebook(ipynb, edit)
    problems = pair_differences(md, ipynb)
    assert any(expected in p for p in problems), problems


def test_pair_check_rejects_non_myst_markdown(tmp_path: Path) -> None:
    md, ipynb = _write_pair(tmp_path)
    md.write_text("# A chapter\n\n```python\nx = 1\n```\n", encoding="utf-8")
    assert any("not a MyST notebook" in p for p in pair_differences(md, ipynb))


def test_output_check_reports_outputs_counts_and_widget_state(tmp_path: Path) -> None:
    _, ipynb = _write_pair(tmp_path)

    def execute(nb: nbformat.NotebookNode) -> None:
        nb.cells[2].execution_count = 1
        nb.cells[2].outputs = [nbformat.v4.new_output("execute_result", {"text/plain": "2"}, execution_count=1)]
        nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}

    _edit_notebook(ipynb, execute)
    problems = output_problems(ipynb)
    assert "cell 2 has 1 output(s)" in problems
    assert "cell 2 has execution count 1" in problems
    assert "notebook metadata holds saved widget state" in problems


def test_toc_check_reports_missing_and_unlisted_chapters(tmp_path: Path) -> None:
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "intro.md").write_text("# Intro\n", encoding="utf-8")
    _write_pair(tmp_path / "book", "01_listed")
    _write_pair(tmp_path / "book", "03_unlisted")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Chapters\n    chapters:\n"
        "      - file: book/01_listed\n      - file: book/02_missing\n",
        encoding="utf-8",
    )
    problems = toc_problems(tmp_path)
    assert problems == [
        "toc chapter 'book/02_missing' has no 02_missing.ipynb",
        "book/03_unlisted.ipynb is not in _toc.yml",
    ]
    (tmp_path / "book" / "02_missing.ipynb").write_bytes((tmp_path / "book" / "01_listed.ipynb").read_bytes())
    (tmp_path / "book" / "03_unlisted.ipynb").unlink()
    assert toc_problems(tmp_path) == []
