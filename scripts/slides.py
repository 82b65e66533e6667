"""Turn every chapter of the book into a reveal.js slide deck that opens offline.

    python scripts/slides.py --output _build/slides [--vendor .vendor] [--fast] [--no-execute] [--only 02 04]

``make slides`` first brings reveal.js 4, require.js, jQuery and MathJax 2 from the npm registry with
``npm pack`` into the git-ignored ``.vendor/`` folder (no CDN is ever referenced), then runs this
script. Each chapter is executed offline (full mode unless ``--fast``; ``--no-execute`` converts the
notebooks as committed, without figures) and written as ``NN-name.slides.html``; the assets are copied
once into ``<output>/vendor/`` so the folder can be carried to a lecture room and opened from disk.

Slides are cut at the chapter's headings: ``#`` and ``##`` start a new slide, ``###`` a sub-slide
(reveal.js's vertical stack); the setup cell and the exercises' reference solutions are left out, and
``--hide-code`` leaves only prose, equations and outputs.
``index.html`` lists the decks. Keys in a deck: arrows to move, ``s`` for the speaker notes window,
``Esc`` for the overview.
"""
from __future__ import annotations

import argparse
import html
import importlib.util
import re
import shutil
import sys
from pathlib import Path

import nbformat
from nbconvert import SlidesExporter

HERE = Path(__file__).resolve().parent
#: What each vendored package must provide (relative to its folder under --vendor).
ASSETS = {
    "reveal.js": ["dist/reveal.js", "dist/reveal.css", "dist/theme/simple.css", "plugin/notes/notes.js"],
    "requirejs": ["require.js"],
    "jquery": ["dist/jquery.min.js"],
    "mathjax": ["MathJax.js", "config/TeX-AMS_CHTML-full.js", "extensions/Safe.js"],
}
REMOTE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*\b(?:src|href)\s*=\s*["'](?:https?:)?//""", re.IGNORECASE)


def _render_book():
    spec = importlib.util.spec_from_file_location("render_book", HERE / "render_book.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_vendor(vendor: Path) -> None:
    """Fail with the command that fixes it when a vendored asset is missing."""
    missing = [f"{package}/{name}" for package, names in ASSETS.items() for name in names
               if not (vendor / package / name).is_file()]
    if missing:
        raise SystemExit(f"error: {vendor} lacks {', '.join(missing)}; run `make vendor` (npm pack of reveal.js, "
                         f"requirejs, jquery and mathjax) or pass --vendor to a folder that has them")


def copy_assets(vendor: Path, output: Path) -> Path:
    """Copy the vendored packages into ``output/vendor`` (once; MathJax without what a deck never loads)."""
    skip = _render_book().MATHJAX_SKIP
    target = output / "vendor"
    for package in ASSETS:
        destination = target / package
        if destination.exists():
            continue
        ignore = shutil.ignore_patterns(*skip) if package == "mathjax" else None
        shutil.copytree(vendor / package, destination, ignore=ignore)
    return target


def slide_types(notebook: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Cut the chapter into slides at its headings; drop the setup cell and the reference solutions."""
    kept, setup_seen = [], False
    for cell in notebook.cells:
        tags = cell.get("metadata", {}).get("tags", [])
        first = cell.source.lstrip().splitlines()[0] if cell.source.strip() else ""
        if cell.cell_type == "code" and not setup_seen:
            setup_seen = True                                    # the shared setup call
            continue
        if "solution" in tags:
            continue
        if cell.cell_type == "markdown" and re.match(r"^#{1,2}\s", first):
            kind = "slide"
        elif cell.cell_type == "markdown" and re.match(r"^#{3,}\s", first):
            kind = "subslide"
        else:
            kind = "-"
        cell.setdefault("metadata", {})["slideshow"] = {"slide_type": kind}
        kept.append(cell)
    notebook.cells = kept
    notebook.metadata.pop("widgets", None)        # widget state would make the template load widget code remotely
    return notebook


def exporter(prefix: str = "vendor", hide_code: bool = False) -> SlidesExporter:
    """A slides exporter whose every script and style sheet is a local file under ``prefix``."""
    return SlidesExporter(exclude_input=hide_code, reveal_url_prefix=f"{prefix}/reveal.js", reveal_theme="simple", reveal_scroll=True,
                          reveal_number="c/t", require_js_url=f"{prefix}/requirejs/require.js",
                          jquery_url=f"{prefix}/jquery/dist/jquery.min.js",
                          mathjax_url=f"{prefix}/mathjax/MathJax.js?config=TeX-AMS_CHTML-full,Safe",
                          embed_images=True, exclude_input_prompt=True, exclude_output_prompt=True)


def remote_references(page: str) -> list[str]:
    """Script, style, image or frame tags of a page that load from the network."""
    return [match.group(0) for match in REMOTE.finditer(page)]


def write_deck(notebook: nbformat.NotebookNode, path: Path, hide_code: bool = False) -> Path:
    body, _ = exporter(hide_code=hide_code).from_notebook_node(slide_types(notebook))
    body = re.sub(r'href="(\d\d-[a-z0-9-]+)\.ipynb', r'href="\1.slides.html', body)   # links between chapters
    remote = remote_references(body)
    if remote:
        raise SystemExit(f"error: {path.name} would load from the network: {remote[:3]}")
    path.write_text(body, encoding="utf-8")
    return path


def write_index(output: Path, entries: list[tuple[str, str]]) -> Path:
    items = "\n".join(f'<li><a href="{html.escape(stem)}.slides.html">{html.escape(title)}</a></li>'
                      for stem, title in entries)
    page = ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>sidlite: slides</title></head>\n"
            "<body><h1>sidlite: the book as slides</h1>\n<p>One reveal.js deck per chapter; they open from disk, "
            "offline. Arrows move, <kbd>s</kbd> opens the speaker notes, <kbd>Esc</kbd> the overview.</p>\n"
            f"<ol style=\"list-style: none\">\n{items}\n</ol>\n</body></html>\n")
    index = output / "index.html"
    index.write_text(page, encoding="utf-8")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output", type=Path, default=Path("_build/slides"), help="folder for the decks")
    parser.add_argument("--book", type=Path, default=Path("book"), help="the folder of chapter notebooks")
    parser.add_argument("--vendor", type=Path, default=Path(".vendor"),
                        help="folder with reveal.js/, requirejs/, jquery/ and mathjax/ (made by `make vendor`)")
    parser.add_argument("--fast", action="store_true", help="execute with SIDLITE_FAST=1 (small sizes)")
    parser.add_argument("--no-execute", dest="execute", action="store_false",
                        help="convert the notebooks as committed (no outputs, no figures)")
    parser.add_argument("--hide-code", action="store_true", help="show only prose, equations and outputs (figures)")
    parser.add_argument("--only", nargs="+", metavar="NN", help="only these chapter numbers")
    parser.add_argument("--timeout", type=int, default=1800, help="seconds one cell may run (default 1800)")
    args = parser.parse_args(argv)
    render = _render_book()
    check_vendor(args.vendor)
    args.output.mkdir(parents=True, exist_ok=True)
    copy_assets(args.vendor, args.output)
    if args.execute:
        render.set_mode(args.fast)
    entries = []
    for path in render.chapters(args.book.resolve(), args.only):
        print(f"{'executing' if args.execute else 'converting'} {path.name} ...", flush=True)
        notebook = render.execute(path, args.timeout) if args.execute else nbformat.read(path, as_version=4)
        deck = write_deck(notebook, args.output / f"{path.stem}.slides.html", args.hide_code)
        print(f"  -> {deck}", flush=True)
        entries.append((path.stem, render.title_of(notebook, path.stem)))
    print(f"index: {write_index(args.output, entries)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
