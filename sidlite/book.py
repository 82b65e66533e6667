"""The first cell of every chapter: ``from sidlite.book import setup; env = setup()``.

It seeds every generator, fixes the thread count, picks the device and reports versions, so every
reader starts from the same state. ``env.fast`` is true under ``make test`` (SIDLITE_FAST=1): chapters
then use smaller images and fewer samples so the whole book runs on a 2-core CPU in CI. ``env.widgets``
is false when SIDLITE_WIDGETS=0, which ``make book`` and ``make slides`` set: their executor (nbclient)
can deadlock on live ipywidgets, and a rendered page shows the static figures anyway.
"""
from __future__ import annotations

import os
import platform
import random
from types import SimpleNamespace

import numpy as np
import torch


def fast_mode() -> bool:
    """True when SIDLITE_FAST is set to 1 (CI and ``make test``)."""
    return os.environ.get("SIDLITE_FAST", "0") == "1"


def setup(seed: int = 0, threads: int | None = None, quiet: bool = False) -> SimpleNamespace:
    """Seed python, NumPy and torch, set threads, choose the device; returns (device, fast, seed, gpu, widgets)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    from .runtime import reuse_freed_memory

    reuse_freed_memory()  # the notebook's kernel is the reader's own process (see the docstring there)
    gpu = torch.cuda.is_available()
    env = SimpleNamespace(device=torch.device("cuda" if gpu else "cpu"), fast=fast_mode(), seed=seed, gpu=gpu,
                          widgets=os.environ.get("SIDLITE_WIDGETS", "1") == "1")
    if not quiet:
        import sidlite

        print(f"sidlite {sidlite.__version__} | torch {torch.__version__} | numpy {np.__version__} | "
              f"python {platform.python_version()}")
        print(f"device: {env.device}" + (f" ({torch.cuda.get_device_name()})" if gpu else
                                         f" ({torch.get_num_threads()} threads; no GPU: GPU cells say what they would show)"))
        print(f"fast mode: {'on (small sizes, as in CI)' if env.fast else 'off (full sizes)'}")
    return env


def show_images(images, titles, size: float = 2.4) -> None:
    """One row of (C, H, W) images in [-1, 1], each titled, drawn at one pixel scale: the tallest is ``size``
    inches high and the others in proportion, so a wider or narrower result (a retarget, an outpaint)
    looks it."""
    import matplotlib.pyplot as plt

    from .image_io import to_display

    widths = [image.shape[-1] for image in images]
    inches = size / max(image.shape[-2] for image in images)
    _, axes = plt.subplots(1, len(images), figsize=(inches * sum(widths) + 0.3 * len(images), size + 0.4),
                           gridspec_kw={"width_ratios": widths}, squeeze=False)
    for ax, image, title in zip(axes[0], images, titles):
        ax.imshow(to_display(image), interpolation="nearest")
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    plt.tight_layout()
    plt.show()
