"""Make a student copy of the book: every exercise's reference solution replaced by a TODO placeholder.

    python scripts/student_copy.py book student [--overwrite]

Cells tagged ``solution`` lose their source (and any outputs); the ``check`` cells after them stay
as they are, so a student's own solution is tested by the same assertions. Every other file of the
book is copied unchanged. The destination must be empty or absent unless ``--overwrite`` is given
(files are then replaced in place; nothing else in the destination is deleted).
"""
from __future__ import annotations

import argparse
import ast
import shutil
import sys
from pathlib import Path

import nbformat

SKIP = {".ipynb_checkpoints", "__pycache__"}


def defined_names(source: str) -> list[str]:
    """The names a cell defines at its top level (assignments, loops, imports, functions, classes), in order."""
    names: list[str] = []

    def add(name: str) -> None:
        if name not in names and not name.startswith("_"):
            names.append(name)

    def targets(node: ast.AST) -> None:
        for sub in ast.walk(node):
            if isinstance(sub, ast.Name):
                add(sub.id)

    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                targets(target)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign, ast.For, ast.AsyncFor)):
            targets(node.target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for alias in node.names:
                add((alias.asname or alias.name).split(".")[0])
    return names


def read_names(source: str) -> set[str]:
    """Every name a cell reads."""
    return {node.id for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Name)
            and isinstance(node.ctx, ast.Load)}


def placeholder(solution: str, check: str) -> str:
    """The TODO cell that replaces ``solution``: it names what the ``check`` cell reads of it, and stops a
    run-all there with that list rather than further down with a NameError in the check."""
    wanted = [name for name in defined_names(solution) if name in read_names(check)]
    listed = ", ".join(wanted) if wanted else "the names the check cell below uses"
    return (f"# TODO: your solution here. The check cell below reads: {listed}.\n"
            f"# Write the code that defines them in place of the line below, then run both cells.\n"
            f"raise NotImplementedError({f'your solution: define {listed}'!r})")


def strip_solutions(notebook: nbformat.NotebookNode) -> int:
    """Replace the source of every ``solution``-tagged code cell by its :func:`placeholder` (naming what the
    next ``check`` cell reads of it); returns the count."""
    count = 0
    cells = notebook.cells
    for index, cell in enumerate(cells):
        if cell.cell_type == "code" and "solution" in cell.get("metadata", {}).get("tags", []):
            check = next((c.source for c in cells[index + 1:] if c.cell_type == "code"
                          and "check" in c.get("metadata", {}).get("tags", [])), "")
            cell.source = placeholder(cell.source, check)
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
