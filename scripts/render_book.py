"""Execute every chapter of the book offline and write it as HTML with its figures embedded.

    python scripts/render_book.py --output _build/html [--fast] [--book book] [--only 01 02]
                                  [--runtimes docs/book-runtimes.md]

Chapters run in full mode (SIDLITE_FAST unset) unless ``--fast``; nothing is downloaded (the
Hugging Face libraries are put in offline mode). Each chapter becomes ``NN-name.html`` (links between
chapters point at the pages) and ``index.html`` lists them with their titles and run times. A chapter
that fails stops the build with an error naming it and the failing cell's error.

``--vendor DIR`` (a folder made by ``make vendor``) copies its MathJax beside the pages and points them
at it, so equations render without a network; without it the pages load MathJax from its CDN.

``--runtimes FILE`` also records each chapter's wall time in a Markdown table with one column per
mode (fast, full) and device; a run updates its own column and keeps the others, so running
``make book`` (full) and ``make book-fast`` on one machine fills in both.
"""
from __future__ import annotations

import argparse
import html
import os
import platform
import re
import shutil
import sys
import time
from pathlib import Path

import nbformat
from nbconvert import HTMLExporter
from nbconvert.preprocessors import CellExecutionError, ExecutePreprocessor

ANSI = re.compile(r"\x1b\[[0-9;]*m")
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
#: Parts of the MathJax 2 npm package a page never loads (sources, other outputs and fonts, other formats).
MATHJAX_SKIP = ("unpacked", "docs", "test", "SVG", "NativeMML", "PreviewHTML", "Asana-Math", "Gyre-Pagella",
                "Gyre-Termes", "Latin-Modern", "Neo-Euler", "STIX-Web", "eot", "svg", "png")


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
    os.environ["SIDLITE_WIDGETS"] = "0"    # live widgets can deadlock nbclient (jupyter/nbclient#312); figures come first
    if fast:
        os.environ["SIDLITE_FAST"] = "1"
    else:
        os.environ.pop("SIDLITE_FAST", None)


def _last_error_line(error: Exception) -> str:
    """The last non-empty line of an execution error (the exception and its message), without colours."""
    lines = [line for line in ANSI.sub("", str(error)).splitlines() if line.strip()]
    return lines[-1].strip() if lines else type(error).__name__


CPU_PROBE = ("import resource as _r, os as _os\n"
             "_u = _r.getrusage(_r.RUSAGE_SELF); _c = _r.getrusage(_r.RUSAGE_CHILDREN)\n"
             "print('__kernel_cpu_seconds__', _u.ru_utime + _u.ru_stime + _c.ru_utime + _c.ru_stime)")


def execute(path: Path, timeout: int) -> nbformat.NotebookNode:
    """Execute one chapter in its own folder; a failing cell stops with an error naming the chapter."""
    return execute_timed(path, timeout)[0]


def execute_timed(path: Path, timeout: int) -> tuple[nbformat.NotebookNode, float | None]:
    """Execute one chapter; also return the CPU seconds its kernel used (less sensitive to a busy machine
    than wall time), measured by one extra cell that is removed again."""
    notebook = nbformat.read(path, as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(CPU_PROBE))
    executor = ExecutePreprocessor(timeout=timeout, kernel_name="python3")
    try:
        executor.preprocess(notebook, {"metadata": {"path": str(path.parent)}})
    except CellExecutionError as error:
        failed = next((i for i, cell in enumerate(notebook.cells) if cell.cell_type == "code"
                       and any(out.get("output_type") == "error" for out in cell.get("outputs", []))), None)
        where = f" in cell {failed}" if failed is not None else ""
        raise SystemExit(f"error: chapter {path.name} failed{where}: {_last_error_line(error)}\n"
                         f"run it alone to see the cell: jupyter lab {path}") from None
    probe = notebook.cells.pop()
    text = "".join(out.get("text", "") for out in probe.get("outputs", []) if out.get("output_type") == "stream")
    found = re.search(r"__kernel_cpu_seconds__ ([0-9.]+)", text)
    return notebook, (float(found.group(1)) if found else None)


def local_mathjax(vendor: Path, output: Path) -> str:
    """Copy the vendored MathJax 2 next to the pages (once) and return the URL the pages load it from."""
    target = output / "vendor" / "mathjax"
    if not target.exists():
        shutil.copytree(vendor / "mathjax", target, ignore=shutil.ignore_patterns(*MATHJAX_SKIP))
    return "vendor/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe"


def render(path: Path, output: Path, timeout: int, mathjax_url: str | None = None) -> tuple[str, float, float | None]:
    """Execute one chapter in its own folder and write its HTML; returns (title, wall seconds, kernel CPU seconds)."""
    start = time.perf_counter()
    notebook, cpu = execute_timed(path, timeout)
    seconds = time.perf_counter() - start
    notebook.metadata.pop("widgets", None)   # saved widget state would load widget code from a CDN; figures come first
    exporter = HTMLExporter(embed_images=True, **({"mathjax_url": mathjax_url} if mathjax_url else {}))
    body, _ = exporter.from_notebook_node(notebook)
    body = re.sub(r'href="(\d\d-[a-z0-9-]+)\.ipynb', r'href="\1.html', body)   # links between chapters
    (output / f"{path.stem}.html").write_text(body, encoding="utf-8")
    return title_of(notebook, path.stem), seconds, cpu


def machine() -> str:
    """A short description of where the chapters ran: the CPU count, or the GPU."""
    try:
        import torch

        if torch.cuda.is_available():
            return torch.cuda.get_device_name()
    except ImportError:  # pragma: no cover - torch is a dependency of sidlite
        pass
    return f"{os.cpu_count()}-core CPU"


def update_runtimes(path: Path, entries: list[tuple], fast: bool, where: str | None = None) -> Path:
    """Write (or update) the Markdown table of run times per chapter: one column per mode and machine.

    ``entries`` are (stem, title, wall seconds) or (stem, title, wall seconds, kernel CPU seconds); the CPU
    time, when given, gets a column of its own.
    """
    column = f"{'fast' if fast else 'full'} mode, {where or machine()} (s)"
    cpu_column = f"{'fast' if fast else 'full'} mode, {where or machine()}, kernel CPU (s)"
    columns, rows = [], {}
    if path.exists():
        lines = [line for line in path.read_text(encoding="utf-8").splitlines() if line.startswith("|")]
        if len(lines) >= 2:
            columns = [c.strip() for c in lines[0].strip("|").split("|")][1:]
            for line in lines[2:]:
                cells = [c.strip() for c in line.strip("|").split("|")]
                if cells[0] != "total":
                    rows[cells[0]] = dict(zip(columns, cells[1:]))
    if column not in columns:
        columns.append(column)
    for stem, title, seconds, *cpu in entries:
        rows.setdefault(stem, {})[column] = f"{seconds:.0f}"
        if cpu and cpu[0] is not None:
            if cpu_column not in columns:
                columns.append(cpu_column)
            rows[stem][cpu_column] = f"{cpu[0]:.0f}"
    totals = {}
    for name in columns:
        values = [float(row[name]) for row in rows.values() if row.get(name, "").replace(".", "", 1).isdigit()]
        totals[name] = f"{sum(values):.0f}" if values else ""
    header = "| chapter | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns) + "\n"
    body = "".join(f"| {stem} | " + " | ".join(row.get(name, "") for name in columns) + " |\n"
                   for stem, row in sorted(rows.items()))
    total = "| total | " + " | ".join(totals[name] for name in columns) + " |\n"
    note = (f"Wall time of each chapter executed by `scripts/render_book.py` (`make book`: full mode, "
            f"`make book-fast`: fast mode), kernel start included, and the CPU time its kernel used (on a "
            f"shared, busy machine wall time grows, CPU time much less; with two threads CPU time can exceed "
            f"wall time); last update {time.strftime('%Y-%m-%d')} (python {platform.python_version()}).\n\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# Run time of each chapter\n\n" + note + header + body + total, encoding="utf-8")
    return path


def write_index(output: Path, entries: list[tuple[str, str, float]], fast: bool) -> Path:
    """index.html: one link per chapter with its title and run time."""
    items = "\n".join(f'<li><a href="{html.escape(stem)}.html">{html.escape(title)}</a>'
                      f" <small>({seconds:.0f} s)</small></li>" for stem, title, seconds, *_ in entries)
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
    parser.add_argument("--runtimes", type=Path, help="Markdown file to record each chapter's run time in")
    parser.add_argument("--vendor", type=Path, help="folder from `make vendor`: use its MathJax, offline")
    args = parser.parse_args(argv)
    if args.vendor and not (args.vendor / "mathjax" / "MathJax.js").is_file():
        raise SystemExit(f"error: {args.vendor} has no mathjax/MathJax.js; run `make vendor`")
    set_mode(args.fast)
    args.output.mkdir(parents=True, exist_ok=True)
    mathjax_url = local_mathjax(args.vendor, args.output) if args.vendor else None
    entries = []
    for path in chapters(args.book.resolve(), args.only):
        print(f"executing {path.name} ...", flush=True)
        title, seconds, cpu = render(path, args.output, args.timeout, mathjax_url)
        print(f"  {seconds:.1f} s" + (f" (kernel CPU {cpu:.1f} s)" if cpu is not None else "")
              + f" -> {args.output / (path.stem + '.html')}", flush=True)
        entries.append((path.stem, title, seconds, cpu))
        if args.runtimes:                    # after every chapter, so a later failure keeps the times so far
            update_runtimes(args.runtimes, entries[-1:], args.fast)
    print(f"index: {write_index(args.output, entries, args.fast)}")
    if args.runtimes:
        print(f"run times: {args.runtimes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
