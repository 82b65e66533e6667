"""``sidlite demo``: what a lecturer would show, written to a folder with an HTML gallery.

Lecture-size samples from a bundled photograph, one megapixel output in the weight-free latent, and every
application on an input chosen so that what it does is visible, as a paper figure would choose it:
an object removed (inpainting), a wall continued (outpainting), a letter drawn with mosaic tiles
(structural analogy), and so on. About a minute on a 2-core CPU; ``--quick`` runs the same code on small
inputs in seconds (for tests). Only the public API is used, so this file doubles as a tour of it.
"""
from __future__ import annotations

import html
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import SidliteError
from ..examples import example_names
from ._common import check_folder_path, positive_int


@dataclass
class Entry:
    """One section of the gallery: a title, a caption, and (file, label) pairs written to the folder."""

    title: str
    note: str
    files: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0
    height: int = 256  # display height in the gallery, CSS pixels (small outputs are scaled up smoothly)


def register(subparsers) -> None:
    parser = subparsers.add_parser("demo", help="lecture-size samples and every application, with an HTML gallery",
                                   description="Write samples of a bundled image and one output of every application "
                                               "into a folder, with an HTML gallery (index.html) to show them.")
    parser.add_argument("-o", "--output", default="outputs/demo", help="output folder (default outputs/demo)")
    parser.add_argument("--image", default="chelsea", choices=example_names(),
                        help="bundled image for the unconditional samples (default chelsea)")
    parser.add_argument("--max-side", type=positive_int, default=256, help="long side of that input in pixels (default 256)")
    parser.add_argument("--samples", type=int, default=3, help="unconditional samples (default 3)")
    parser.add_argument("--quick", action="store_true", help="small inputs everywhere: the same code in seconds (tests)")
    parser.add_argument("--overwrite", action="store_true", help="replace an earlier demo in the same folder")
    parser.set_defaults(run=run)


# --- procedural inputs (nothing is downloaded or copied from elsewhere) ---------------------------------

def letter_image(char: str = "S", size: int = 196) -> torch.Tensor:
    """A bold black letter on white, (3, size, size) in [-1, 1], drawn with Pillow's bundled font."""
    from PIL import Image, ImageDraw, ImageFont

    canvas = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=int(size * 0.9))
    draw.text((size / 2, size / 2), char, fill=0, font=font, anchor="mm", stroke_width=max(1, int(size * 0.03)),
              stroke_fill=0)
    grey = torch.from_numpy(np.asarray(canvas, dtype=np.float32) / 127.5 - 1)
    return grey[None].repeat(3, 1, 1)


def mosaic_image(size: int = 196, tile: int = 9, seed: int = 0) -> torch.Tensor:
    """A procedural Roman mosaic, (3, size, size) in [-1, 1]: jittered-grid Voronoi tesserae in cream, with
    a band of dark ones, separated by grey grout. Its patches are what a structural analogy draws with."""
    rng = np.random.default_rng(seed)
    cells = size // tile + 2
    gy, gx = np.mgrid[-1:cells - 1, -1:cells - 1]
    centres = np.stack([gy.ravel(), gx.ravel()], 1) * tile + tile / 2 + rng.uniform(-0.3, 0.3, (gy.size, 2)) * tile
    yy, xx = np.mgrid[0:size, 0:size]
    dist = np.sqrt((yy[..., None] - centres[:, 0]) ** 2 + (xx[..., None] - centres[:, 1]) ** 2)
    nearest = np.sort(dist, -1)
    label = dist.argmin(-1)
    grout = nearest[..., 1] - nearest[..., 0] < 1.6
    dark = np.abs(centres[:, 0] - size / 2) < size * 0.18
    colours = np.where(dark[:, None], [0.22, 0.22, 0.20], [0.85, 0.80, 0.70]) + rng.normal(0, 0.05, (len(centres), 3))
    image = colours[label]
    image[grout] = [0.50, 0.47, 0.42]
    image = np.clip(image + rng.normal(0, 0.02, image.shape), 0, 1)
    return torch.from_numpy(image.transpose(2, 0, 1).astype(np.float32) * 2 - 1)


# --- the gallery's sections --------------------------------------------------------------------------

def _save(folder: Path, name: str, image: torch.Tensor) -> str:
    from ..image_io import save_image

    return save_image(image, folder / name, overwrite=True).name


def unconditional(folder: Path, quick: bool, image_name: str = "chelsea", max_side: int = 256,
                  samples: int = 3) -> Entry:
    import sidlite

    image = sidlite.example_image(image_name, 96 if quick else max_side)
    outputs = sidlite.generate(image, samples, patch_size=7, steps=10, eta=0.0, seed=0, progress=False)
    files = [(_save(folder, "input.png", image), f"input, {image.shape[2]}x{image.shape[1]}")]
    files += [(_save(folder, f"generate_{i:03d}.png", x), f"sample {i + 1} (seed {i})") for i, x in enumerate(outputs)]
    return Entry("Unconditional generation", f"{sidlite.example_credit(image_name)}. P = 7, T = 10, η = 0, "
                 "pixel space: every patch comes from the input, the arrangement is new.", files)


def megapixel(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("astronaut", 128 if quick else None)
    side = 256 if quick else 1024
    out = sidlite.generate(image, size=(side, side), latent="pca", seed=10, progress=False)[0]
    return Entry(f"{side}x{side} in the weight-free latent",
                 f"{sidlite.example_credit('astronaut')}, {image.shape[2]}x{image.shape[1]}, sampled at {side}x{side} "
                 "in the block-PCA latent (8x smaller per side, 16 channels; no weights), the paper's latent preset.",
                 [(_save(folder, "astronaut_input.png", image), "input"),
                  (_save(folder, f"megapixel_{side}.png", out), f"{side}x{side} sample")], height=512)


def retargeting(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("chelsea", 96 if quick else 256)
    h, w = image.shape[1:]
    size = (h, round(1.6 * w))
    out = sidlite.retarget(image, size, patch_size=11, steps=10, progress=False)
    return Entry("Retargeting", "1.6x wider: the coarsest level is the stretched layout, every finer level is sampled "
                 "from the original's unstretched patches (P = 11, T = 10), beside a plain stretch.",
                 [(_save(folder, "retarget_stretch.png", sidlite.resize(image, size)), "bicubic stretch"),
                  (_save(folder, "retarget_wide.png", out), f"retargeted, {size[1]}x{size[0]}")])


def symmetry(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("chelsea", 96 if quick else 256)
    out = sidlite.symmetric(image, patch_size=11, steps=10, progress=False)
    return Entry("Symmetric", "Every estimate x̂ mirrored left to right: a new image, exactly symmetric (P = 11).",
                 [(_save(folder, "symmetric.png", out), "left-right symmetric")])


def tiling(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("brick", 48 if quick else 112)
    out = sidlite.tileable(image, num_shifts=3, patch_size=11, eta=0.0, steps=10, progress=False)
    return Entry("Tileable", f"{sidlite.example_credit('brick')}. The paper's 3-shift blend (P = 11, η = 0). Tiled "
                 "2x2, the input shows its seams; the new wall does not.",
                 [(_save(folder, "tileable_input_2x2.png", sidlite.tile_preview(image, 2, 2)), "input, tiled 2x2"),
                  (_save(folder, "tileable.png", out), "sample"),
                  (_save(folder, "tileable_2x2.png", sidlite.tile_preview(out, 2, 2)), "sample, tiled 2x2")])


def inpainting(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("rocket", 96 if quick else 256)
    h, w = image.shape[1:]
    # the rocket and its launch mount: a tall box in the middle of the frame
    hole = sidlite.rectangle_mask((h, w), round(0.23 * h), round(0.437 * w), h, round(0.117 * w))
    out = sidlite.inpaint(image, hole, patch_size=11, steps=10, progress=False)
    return Entry("Inpainting: object removal", f"{sidlite.example_credit('rocket')}. The rocket is masked (white) "
                 "and filled with patches of the rest of the picture; the known pixels are kept exactly (P = 11).",
                 [(_save(folder, "inpaint_input.png", image), "input"),
                  (_save(folder, "inpaint_hole.png", torch.where(hole, torch.ones_like(image), image)), "hole"),
                  (_save(folder, "inpaint.png", out), "inpainted")])


def outpainting(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("brick", 72 if quick else 160)
    w = image.shape[2]
    out = sidlite.outpaint(image, left=w // 3, right=w // 3, patch_size=11, steps=10, progress=False)
    return Entry("Outpainting", f"{sidlite.example_credit('brick')}. The wall extended by a third on each side: the "
                 "courses of bricks continue across both borders (the middle is the input, exactly; P = 11).",
                 [(_save(folder, "outpaint_input.png", image), "input"), (_save(folder, "outpaint.png", out), "outpainted")])


def editing(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("chelsea", 96 if quick else 256)
    h, w = image.shape[1:]
    piece = image[:, round(0.55 * h):round(0.85 * h), round(0.05 * w):round(0.3 * w)].flip(-1) * 0.6
    edited, mask = sidlite.paste(image, piece, round(0.05 * h), round(0.62 * w))
    out = sidlite.edit(image, edited, mask, patch_size=7, steps=10, noise_level=0.5, progress=False)
    return Entry("Editing and harmonization", "A darkened, flipped crop pasted in (left), re-noised to 0.5 and "
                 "denoised with the image's own patches, then composited through a feathered mask (P = 7).",
                 [(_save(folder, "edit_pasted.png", edited), "pasted"), (_save(folder, "edit_harmonized.png", out), "harmonized")])


def super_resolution(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("chelsea", 32 if quick else 64)
    out = sidlite.upscale(image, 4, steps=10, progress=False)
    cubic = sidlite.resize(image, tuple(out.shape[1:]))
    return Entry("Super-resolution", f"A {image.shape[2]}-px image enlarged 4x with its own patches across scales "
                 "(P = 7), beside the bicubic enlargement; shrunk back, the result is the input.",
                 [(_save(folder, "upscale_input.png", image), "input"), (_save(folder, "upscale_cubic_4x.png", cubic), "bicubic 4x"),
                  (_save(folder, "upscale_4x.png", out), "sidlite.upscale 4x")])


def analogy(folder: Path, quick: bool) -> Entry:
    import sidlite

    side = 64 if quick else 196
    structure, style = letter_image("S", side), mosaic_image(side, tile=max(4, side // 22))
    files = [(_save(folder, "analogy_structure.png", structure), "structure"),
             (_save(folder, "analogy_style.png", style), "style (a generated mosaic)")]
    for level in (0.3, 0.5):
        out = sidlite.structural_analogy(structure, style, noise_level=level, patch_size=7, steps=(4, 4, 20),
                                         progress=False)
        files.append((_save(folder, f"analogy_noise{level}.png", out), f"noise level {level}"))
    return Entry("Structural analogy", "The letter's layout drawn with the mosaic's patches: the structure's coarsest "
                 "level is DDIM-inverted and reconstructed with the style's denoiser (P = 7, T = [4, 4, 20]); a lower "
                 "noise level keeps more of the structure.", files)


def style(folder: Path, quick: bool) -> Entry:
    import sidlite

    image = sidlite.example_image("chelsea", 64 if quick else 192)
    palette = sidlite.example_image("coffee", 96)
    out = sidlite.palette_style(image, palette, steps=20, patch_size=7, progress=False)
    return Entry("Guided style (weight-free)", "The cat guided toward the 8 k-means colours of the coffee photo "
                 "(P = 7, T = 20, noise level 0.3). With CLIP weights, `sidlite stylize --prompt` does the same for text.",
                 [(_save(folder, "stylize_input.png", image), "input"), (_save(folder, "stylize_palette.png", palette), "palette"),
                  (_save(folder, "stylize_palette_result.png", out), "guided")])


APPLICATIONS: list[Callable[[Path, bool], Entry]] = [megapixel, retargeting, symmetry, tiling, inpainting, outpainting,
                                                      editing, super_resolution, analogy, style]


# --- the page --------------------------------------------------------------------------------------

def write_gallery(folder: Path, entries: list[Entry], total_seconds: float) -> Path:
    """``index.html``: one section per entry, images at their own size (scaled down to fit, never up)."""
    sections = []
    for entry in entries:
        figures = "".join(f'<figure><img src="{html.escape(name)}" alt="{html.escape(label)}" '
                          f'style="height:{entry.height}px">'
                          f"<figcaption>{html.escape(label)}</figcaption></figure>" for name, label in entry.files)
        sections.append(f"<section><h2>{html.escape(entry.title)} <small>{entry.seconds:.1f} s</small></h2>"
                        f"<p>{html.escape(entry.note)}</p><div class='row'>{figures}</div></section>")
    page = ("<!doctype html><html lang='en'><head><meta charset='utf-8'><title>sidlite demo</title>"
            "<meta name='viewport' content='width=device-width, initial-scale=1'><style>"
            "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1400px;padding:0 1em;color:#222}"
            "h2 small{font-weight:normal;color:#888;font-size:60%}.row{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-end}"
            "figure{margin:0}img{display:block;width:auto;max-width:100%;object-fit:contain}"
            "figcaption{font-size:90%;color:#555}</style></head><body>"
            "<h1>sidlite demo</h1><p>Training-free single-image diffusion: every image below is made from the patches "
            f"of one input, with no network and no training. Written by <code>sidlite demo</code> in {total_seconds:.0f} s."
            "</p>" + "".join(sections) + "</body></html>")
    path = folder / "index.html"
    path.write_text(page, encoding="utf-8")
    return path


def run(args) -> None:
    folder = Path(args.output)
    check_folder_path(folder)
    if folder.exists() and any(folder.iterdir()) and not args.overwrite:
        raise SidliteError(f"{folder} already holds files; pass --overwrite or choose another --output")
    folder.mkdir(parents=True, exist_ok=True)
    quick = bool(getattr(args, "quick", False))
    start = time.perf_counter()
    sections = [lambda f, q: unconditional(f, q, args.image, args.max_side, args.samples), *APPLICATIONS]
    entries = []
    for make in sections:
        began = time.perf_counter()
        entry = make(folder, quick)
        entry.seconds = time.perf_counter() - began
        entries.append(entry)
        print(f"{entry.title.lower()}: {entry.seconds:.1f} s", flush=True)
    total = time.perf_counter() - start
    gallery = write_gallery(folder, entries, total)
    print(f"wrote everything in {total:.1f} s to {folder}/")
    print(f"open {gallery} to see them")
