"""Make a student copy of the book: every exercise's reference solution replaced by a TODO placeholder.

    python scripts/student_copy.py book student [--overwrite]

Cells tagged ``solution`` lose their source (and any outputs); the ``check`` cells after them stay
as they are, so a student's own solution is tested by the same assertions. Every other file of the
book is copied unchanged. The destination must be empty or absent unless ``--overwrite`` is given
(files are then replaced in place; nothing else in the destination is deleted).
"""
from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import nbformat

PLACEHOLDER = ("# TODO: your solution here.\n"
               "# Define the names that the check cell below uses, then run both cells.\n"
               "...")
SKIP = {".ipynb_checkpoints", "__pycache__"}


def strip_solutions(notebook: nbformat.NotebookNode) -> int:
    """Replace the source of every ``solution``-tagged code cell by :data:`PLACEHOLDER`; returns the count."""
    count = 0
    for cell in notebook.cells:
        if cell.cell_type == "code" and "solution" in cell.get("metadata", {}).get("tags", []):
            cell.source = PLACEHOLDER
            cell.outputs = []
            cell.execution_count = None
            count += 1
    return count


def make_student_copy(source: Path, destination: Path, overwrite: bool = False) -> dict[str, int]:
    """Copy ``source`` to ``destination`` with solutions stripped; returns {notebook name: cells stripped}."""
    source, destination = Path(source).resolve(), Path(destination).resolve()
    if not source.is_dir():
        raise SystemExit(f"error: the book folder {source} does not exist")
    if destination == source or source in destination.parents or destination in source.parents:
        raise SystemExit(f"error: the destination {destination} must lie outside the book folder {source} "
                         f"and must not contain it")
    if destination.exists() and any(destination.iterdir()) and not overwrite:
        raise SystemExit(f"error: {destination} exists and is not empty; remove it or pass --overwrite")
    stripped = {}
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if path.is_dir() or SKIP.intersection(relative.parts):
            continue
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".ipynb":
            notebook = nbformat.read(path, as_version=4)
            stripped[str(relative)] = strip_solutions(notebook)
            nbformat.write(notebook, target)
        else:
            shutil.copy2(path, target)
    return stripped


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("source", type=Path, help="the book folder (book)")
    parser.add_argument("destination", type=Path, help="where the student copy goes (student)")
    parser.add_argument("--overwrite", action="store_true", help="write into a non-empty destination")
    args = parser.parse_args(argv)
    stripped = make_student_copy(args.source, args.destination, args.overwrite)
    for name, count in stripped.items():
        print(f"{name}: {count} solution cell(s) replaced")
    print(f"student copy written to {args.destination}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
