"""``sidlite demo``: a quick tour on bundled images, written to a folder with an HTML gallery."""
from __future__ import annotations

import html
import importlib
import pkgutil
import time
from pathlib import Path

from .. import apps
from ..errors import SidliteError
from ..examples import example_credit, example_image
from ..image_io import save_image
from ..model import generate


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="samples from bundled images into a folder with an HTML gallery")
    parser.add_argument("--output", default="outputs/demo", help="output folder (default outputs/demo)")
    parser.add_argument("--image", default="chelsea", help="bundled image to use (default chelsea)")
    parser.add_argument("--max-side", type=int, default=160, help="long side of the input in pixels (default 160)")
    parser.add_argument("--samples", type=int, default=3, help="unconditional samples (default 3)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo in the same folder")
    parser.set_defaults(run=run)


def _write_gallery(folder: Path, entries: list[tuple[str, str, list[str]]]) -> Path:
    rows = []
    for title, note, files in entries:
        images = "".join(f'<figure><img src="{html.escape(f)}"><figcaption>{html.escape(f)}</figcaption></figure>'
                         for f in files)
        rows.append(f"<section><h2>{html.escape(title)}</h2><p>{html.escape(note)}</p>{images}</section>")
    page = ("<!doctype html><meta charset='utf-8'><title>sidlite demo</title><style>body{font-family:sans-serif;"
            "margin:2em}figure{display:inline-block;margin:.5em}img{image-rendering:pixelated;height:200px}"
            "</style><h1>sidlite demo</h1>" + "".join(rows))
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def run(args) -> None:
    folder = Path(args.output)
    if folder.exists() and any(folder.iterdir()) and not args.overwrite:
        raise SidliteError(f"{folder} already holds files; pass --overwrite or choose another --output")
    image = example_image(args.image, args.max_side)
    start = time.perf_counter()
    print(f"input: bundled image '{args.image}' ({example_credit(args.image)}), {image.shape[2]}x{image.shape[1]} px")
    save_image(image, folder / "input.png", overwrite=True)
    samples = generate(image, args.samples, patch_size=7, steps=10, eta=0.0, seed=0)
    files = []
    for i, sample in enumerate(samples):
        files.append(save_image(sample, folder / f"generate_{i:03d}.png", overwrite=True).name)
    entries = [("Input", example_credit(args.image), ["input.png"]),
               ("Unconditional generation", f"{args.samples} samples, P = 7, T = 10, η = 0, seeds 0…", files)]
    print(f"unconditional generation: {len(files)} samples in {time.perf_counter() - start:.1f} s")
    for module in sorted(m.name for m in pkgutil.iter_modules(apps.__path__) if not m.name.startswith("_")):
        app = importlib.import_module(f"{apps.__name__}.{module}")
        if hasattr(app, "demo"):
            began = time.perf_counter()
            title, note, app_files = app.demo(folder)
            entries.append((title, note, app_files))
            print(f"{title.lower()}: {time.perf_counter() - began:.1f} s")
    gallery = _write_gallery(folder, entries)
    print(f"wrote everything in {time.perf_counter() - start:.1f} s to {folder}/")
    print(f"open {gallery} to see them")
