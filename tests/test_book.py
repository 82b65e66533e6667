"""Hygiene of the book: every chapter in book/ follows the same rules, and the student copy works.

Rules: files are named NN-name.ipynb with unique numbers and a 00 preface; the first code cell is the
shared setup call; no outputs or execution counts are committed; code cells install, download and
shell out to nothing; every NBVAL_SKIP states a reason; every chapter has at least three exercises
(a Markdown cell, a ``solution``-tagged code cell, a ``check``-tagged code cell) and a References section.
"""
from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
CHAPTERS = sorted(BOOK.glob("*.ipynb"))
SETUP = "from sidlite.book import setup\nenv = setup()"
NAME = re.compile(r"^(\d\d)-[a-z0-9]+(-[a-z0-9]+)*\.ipynb$")
FORBIDDEN = [
    (re.compile(r"^\s*!"), "a shell escape (!)"),
    (re.compile(r"^\s*%%?(pip|conda|sh|bash|system|sx|script)\b"), "a shell or install magic"),
    (re.compile(r"^\s*[%!]?\s*(pip|conda|apt(-get)?)\s+install\b|\bpip\.main\b"), "an install"),
    (re.compile(r"\b(urlopen|urlretrieve|requests\.(get|post)|wget|curl|hf_hub_download|snapshot_download)\b"),
     "a download"),
    (re.compile(r"\b(subprocess|os\.system|os\.popen)\b"), "a shell call"),
]


def _load(path: Path) -> nbformat.NotebookNode:
    return nbformat.read(path, as_version=4)


def _tags(cell) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _script(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chapter_names_are_numbered_uniquely_with_a_preface():
    assert CHAPTERS, "book/ has no notebooks"
    bad = [p.name for p in CHAPTERS if not NAME.match(p.name)]
    assert not bad, f"chapter files must be named NN-name.ipynb (lower case, hyphens): {bad}"
    numbers = [p.name[:2] for p in CHAPTERS]
    assert len(numbers) == len(set(numbers)), f"chapter numbers repeat: {numbers}"
    assert "00" in numbers, "the preface book/00-*.ipynb is missing"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_first_code_cell_is_the_shared_setup(path):
    code = [c for c in _load(path).cells if c.cell_type == "code"]
    assert code and code[0].source.strip() == SETUP, f"{path.name}: the first code cell must be exactly {SETUP!r}"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_no_outputs_or_execution_counts_are_committed(path):
    dirty = [i for i, c in enumerate(_load(path).cells)
             if c.cell_type == "code" and (c.get("outputs") or c.get("execution_count") is not None)]
    assert not dirty, f"{path.name}: cells {dirty} carry outputs or execution counts; clear them before committing"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_code_cells_install_download_and_shell_out_to_nothing(path):
    found = []
    for i, cell in enumerate(_load(path).cells):
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            found += [f"cell {i}: {what}: {line.strip()}" for pattern, what in FORBIDDEN if pattern.search(line)]
    assert not found, f"{path.name}: " + "; ".join(found)


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_every_nbval_skip_states_a_reason(path):
    for i, cell in enumerate(_load(path).cells):
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        assert "nbval-skip" not in _tags(cell), f"{path.name} cell {i}: use '# NBVAL_SKIP: <reason>', not a tag"
        if any("NBVAL_SKIP" in line for line in lines):
            assert re.match(r"^# NBVAL_SKIP: \S.{9,}", lines[0]), (
                f"{path.name} cell {i}: NBVAL_SKIP must be the first line, as '# NBVAL_SKIP: <reason>'")


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_at_least_three_exercises_with_checks(path):
    cells = _load(path).cells
    exercises = 0
    for i, cell in enumerate(cells):
        if "solution" not in _tags(cell):
            continue
        assert cell.cell_type == "code", f"{path.name} cell {i}: a solution cell must be a code cell"
        assert i > 0 and cells[i - 1].cell_type == "markdown", f"{path.name} cell {i}: the exercise text must precede it"
        assert i + 1 < len(cells) and cells[i + 1].cell_type == "code" and "check" in _tags(cells[i + 1]), (
            f"{path.name} cell {i}: a solution cell must be followed by a check-tagged code cell")
        assert "assert" in cells[i + 1].source, f"{path.name} cell {i + 1}: a check cell must assert something"
        exercises += 1
    assert exercises >= 3, f"{path.name}: {exercises} exercises; every chapter needs at least three"


@pytest.mark.parametrize("path", CHAPTERS, ids=[p.name for p in CHAPTERS])
def test_has_a_references_section(path):
    headings = [line for c in _load(path).cells if c.cell_type == "markdown" for line in c.source.splitlines()
                if re.match(r"^#+\s*References\b", line)]
    assert headings, f"{path.name}: add a Markdown '## References' section crediting papers and sources"


def _tiny_book(folder: Path) -> Path:
    cells = [nbformat.v4.new_markdown_cell("# 00 tiny"), nbformat.v4.new_code_cell(SETUP),
             nbformat.v4.new_markdown_cell("Exercise: set x to 2."),
             nbformat.v4.new_code_cell("x = 2", metadata={"tags": ["solution"]}),
             nbformat.v4.new_code_cell("assert x == 2", metadata={"tags": ["check"]})]
    folder.mkdir()
    nbformat.write(nbformat.v4.new_notebook(cells=cells), folder / "00-tiny.ipynb")
    (folder / "notes.txt").write_text("kept as is")
    return folder


def test_student_copy_blanks_solutions_and_keeps_checks(tmp_path):
    student = _script("student_copy")
    book = _tiny_book(tmp_path / "book")
    stripped = student.make_student_copy(book, tmp_path / "student")
    assert stripped == {"00-tiny.ipynb": 1}
    cells = _load(tmp_path / "student" / "00-tiny.ipynb").cells
    assert cells[3].source == student.PLACEHOLDER and "TODO" in cells[3].source
    assert cells[4].source == "assert x == 2" and cells[1].source == SETUP
    assert (tmp_path / "student" / "notes.txt").read_text() == "kept as is"
    namespace: dict = {}
    exec(cells[3].source, namespace)  # the placeholder runs; the check then fails until the student answers
    with pytest.raises(NameError):
        exec(cells[4].source, namespace)


def test_student_copy_refuses_a_non_empty_destination_without_overwrite(tmp_path):
    student = _script("student_copy")
    book = _tiny_book(tmp_path / "book")
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "mine.ipynb").write_text("{}")
    with pytest.raises(SystemExit, match="--overwrite"):
        student.make_student_copy(book, tmp_path / "student")
    assert student.make_student_copy(book, tmp_path / "student", overwrite=True) == {"00-tiny.ipynb": 1}
    assert (tmp_path / "student" / "mine.ipynb").read_text() == "{}"
    with pytest.raises(SystemExit, match="outside"):
        student.make_student_copy(book, book / "student")


def test_student_copy_of_the_real_book_blanks_every_solution(tmp_path):
    student = _script("student_copy")
    stripped = student.make_student_copy(BOOK, tmp_path / "student")
    assert set(stripped) == {p.name for p in CHAPTERS}
    for path in CHAPTERS:
        original, copy = _load(path).cells, _load(tmp_path / "student" / path.name).cells
        assert len(original) == len(copy)
        for before, after in zip(original, copy):
            if "solution" in _tags(before):
                assert after.source == student.PLACEHOLDER
            else:
                assert after.source == before.source


def test_render_book_writes_html_and_index_and_names_a_failing_chapter(tmp_path, monkeypatch):
    render = _script("render_book")
    for key in [*render.OFFLINE, "MPLBACKEND", "SIDLITE_FAST"]:
        monkeypatch.setenv(key, "unchanged")  # restored after the test, whatever set_mode does
    book = tmp_path / "book"
    book.mkdir()
    good = [nbformat.v4.new_markdown_cell("# 00 · A good chapter"),
            nbformat.v4.new_code_cell("import os\nimport matplotlib.pyplot as plt\n"
                                      "assert os.environ['SIDLITE_FAST'] == '1'\nplt.plot([0, 1]); plt.show()")]
    nbformat.write(nbformat.v4.new_notebook(cells=good), book / "00-good.ipynb")
    assert render.main(["--book", str(book), "--output", str(tmp_path / "html"), "--fast"]) == 0
    assert "data:image/png;base64" in (tmp_path / "html" / "00-good.html").read_text()
    index = (tmp_path / "html" / "index.html").read_text()
    assert 'href="00-good.html"' in index and "A good chapter" in index
    bad = [nbformat.v4.new_code_cell("raise ValueError('broken on purpose')")]
    nbformat.write(nbformat.v4.new_notebook(cells=bad), book / "01-bad.ipynb")
    with pytest.raises(SystemExit, match=r"01-bad\.ipynb failed in cell 0: ValueError: broken on purpose"):
        render.main(["--book", str(book), "--output", str(tmp_path / "html"), "--fast", "--only", "01"])
