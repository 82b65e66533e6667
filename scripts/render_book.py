"""Execute every chapter of the book offline and write it as HTML with its figures embedded.

    python scripts/render_book.py --output _build/html [--fast] [--book book] [--only 01 02]

Chapters run in full mode (SIDLITE_FAST unset) unless ``--fast``; nothing is downloaded (the
Hugging Face libraries are put in offline mode). Each chapter becomes ``NN-name.html`` and
``index.html`` lists them with their titles and run times. A chapter that fails stops the build
with an error naming it and the failing cell's error.
"""
from __future__ import annotations

import argparse
import html
import os
import re
import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

ANSI = re.compile(r"\x1b\[[0-9;]*m")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def chapters(book: Path, only: list[str] | None = None) -> list[Path]:
    """The chapter notebooks NN-name.ipynb of ``book`` in order, optionally only those numbered in ``only``."""
    found = sorted(p for p in book.glob("[0-9][0-9]-*.ipynb"))
    if only:
        found = [p for p in found if p.name[:2] in only]
    if not found:
        raise SystemExit(f"error: no chapters NN-name.ipynb found in {book}" + (f" for {only}" if only else ""))
    return found


def title_of(notebook: nbformat.NotebookNode, fallback: str) -> str:
    """The first Markdown heading of a notebook (its chapter title)."""
    for cell in notebook.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return fallback


def set_mode(fast: bool) -> None:
    """Put this process (and so the kernels it starts) in fast or full mode, offline."""
    os.environ.update(OFFLINE)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
    if fast:
        os.environ["SIDLITE_FAST"] = "1"
    else:
        os.environ.pop("SIDLITE_FAST", None)


def _last_error_line(error: Exception) -> str:
    """The last non-empty line of an execution error (the exception and its message), without colours."""
    lines = [line for line in ANSI.sub("", str(error)).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


def render(path: Path, output: Path, timeout: int) -> tuple[str, float]:
    """Execute one chapter in its own folder and write its HTML; returns (title, seconds)."""
    notebook = nbformat.read(path, as_version=4)
    start = time.perf_counter()
    executor = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    try:
        executor.preprocess(notebook, {"metadata": {"path": str(path.parent)}})
    except CellExecutionError as error:
        failed = next((i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
                       and any(out.get("output_type") == "error" for out in cell.get("outputs", []))), None)
        where = f" in cell {failed}" if failed is not None else ""
        raise SystemExit(f"error: chapter {path.name} failed{where}: {_last_error_line(error)}\n"
                         f"run it alone to see the cell: jupyter lab {path}") from None
    seconds = time.perf_counter() - start
    exporter = HTMLExporter(embed_images=True)
    body, _ = exporter.from_notebook_node(notebook)
    (output / f"{path.stem}.html").write_text(body, encoding="utf-8")
    return title_of(notebook, path.stem), seconds


def write_index(output: Path, entries: list[tuple[str, str, float]], fast: bool) -> Path:
    """index.html: one link per chapter with its title and run time."""
    items = "\n".join(f'<li><a href="{html.escape(stem)}.html">{html.escape(title)}</a>'
                      f" <small>({seconds:.0f} s)</small></li>" for stem, title, seconds in entries)
    mode = "fast mode (small sizes, as in CI)" if fast else "full mode"
    page = (f"<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sidlite: the book</title></head>\n"
            f"<body><h1>sidlite: training-free single-image diffusion</h1>\n"
            f"<p>Every chapter executed offline in {mode}.</p>\n<ol style=\"list-style: none\">\n{items}\n</ol>\n"
            f"</body></html>\n")
    index = output / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("_build/html"), help="folder for the HTML pages")
    parser.add_argument("--book", type=Path, default=Path("book"), help="the folder of chapter notebooks")
    parser.add_argument("--fast", action="store_true", help="run with SIDLITE_FAST=1 (small sizes)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="render only these chapter numbers")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run (default 1800)")
    args = parser.parse_args(argv)
    set_mode(args.fast)
    args.output.mkdir(parents=True, exist_ok=True)
    entries = []
    for path in chapters(args.book.resolve(), args.only):
        print(f"executing {path.name} ...", flush=True)
        title, seconds = render(path, args.output, args.timeout)
        print(f"  {seconds:.1f} s -> {args.output / (path.stem + '.html')}", flush=True)
        entries.append((path.stem, title, seconds))
    print(f"index: {write_index(args.output, entries, args.fast)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
