"""Benchmark image sets, read from a local folder (never downloaded by this code).

``sinddm15`` is the 15-image set of SinDDM (``fallenshock/SinDDM``, ``datasets/``, MIT licence), the set
behind the efficient-SID paper's Table 1; the paper's code also publishes it as the release asset
``uncond-sinddm15.zip`` of ``haojunqiu/efficient-SID-code`` (``datasets/download_data.py``). We do not
know a checksum we could verify, so this module only reads a folder you provide: the ``root`` argument,
else the ``SIDLITE_DATA`` environment variable, else ``../shared/data`` beside a source checkout.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from ..errors import SidliteError
from ..image_io import load_image

BENCHMARKS = {
    "sinddm15": "the 15 SinDDM images (github.com/fallenshock/SinDDM, folder datasets/; or the asset "
                "uncond-sinddm15.zip of github.com/haojunqiu/efficient-SID-code's release data-v1)",
}
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def data_root(root: str | Path | None = None) -> Path:
    """The folder holding benchmark sets: ``root``, else $SIDLITE_DATA, else ../shared/data beside the repo."""
    if root is not None:
        return Path(root)
    if os.environ.get("SIDLITE_DATA"):
        return Path(os.environ["SIDLITE_DATA"])
    return Path(__file__).resolve().parents[3] / "shared" / "data"


def benchmark_folder(name: str = "sinddm15", root: str | Path | None = None) -> Path:
    """The folder of one benchmark set; a one-line SidliteError saying where to get it when absent."""
    if name not in BENCHMARKS:
        raise SidliteError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    folder = data_root(root) / name
    if not folder.is_dir() or not any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
        raise SidliteError(f"benchmark images not found in {folder}: put {BENCHMARKS[name]} there, "
                           f"or pass root= / set SIDLITE_DATA to the folder that holds {name}/")
    return folder


def load_benchmark(name: str = "sinddm15", root: str | Path | None = None, max_side: int | None = None,
                   names: list[str] | None = None) -> dict[str, torch.Tensor]:
    """The set's images by file stem, sorted, as (3, H, W) tensors in [-1, 1] (alpha dropped; ``max_side``
    shrinks each, antialiased; ``names`` keeps only those stems, in that order)."""
    folder = benchmark_folder(name, root)
    files = {p.stem: p for p in sorted(folder.iterdir()) if p.suffix.lower() in IMAGE_SUFFIXES}
    if names is not None:
        missing = [n for n in names if n not in files]
        if missing:
            raise SidliteError(f"{name} has no image(s) {missing}; it has: {', '.join(files)}")
        files = {n: files[n] for n in names}
    return {stem: load_image(path, max_side=max_side) for stem, path in files.items()}
