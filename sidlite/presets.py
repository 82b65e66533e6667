"""Every application's default settings, per working space, in one table to compare with the paper's.

Each row is a :class:`~sidlite.config.SamplingConfig` that an application starts from; keyword settings
override it. The paper's official presets (reference spec §9) are followed except where the ``note``
says otherwise — mostly T = 10 in pixels where the paper uses 25, which its own comments call
near-identical for these applications and which is 2.5× faster. In a latent with the plain average
(ρ = ∞), T = 10 left textures blurred (half the sharpness of T = 20 on gravel), so the latent presets
take at least 20. The latent presets probe 8 k-means lists where a level runs top-k, as the paper's
latent ANN preset does (the gigapixel one probes 40 through a compressed index): with the paper's pixel
setting of 2, outputs many times the input's size washed out into smooth grey regions (measured in
``benchmarks/results``, 'scale'). The pixel presets leave the count to the plan: 2 at the input's size,
more as the output outgrows it (:func:`sidlite.plan.default_nprobe`). ``sidlite presets`` prints the table.
"""
from __future__ import annotations

import math

from .config import SamplingConfig
from .errors import SidliteError

#: The latent presets' backend: 'auto' with 8 lists probed where a level runs top-k (uncond/latent_ann).
LATENT_BACKEND = "auto:nprobe=8"

#: (application, space) -> (config, note). Spaces: 'pixels' and 'latent' (any codec with cell_size > 1).
PRESETS: dict[tuple[str, str], tuple[SamplingConfig, str]] = {
    ("generate", "pixels"): (SamplingConfig(15, "auto", "1.6P", 0.2, 10, 1e-4, 0.0, 10), "uncond/pixel_*"),
    ("generate", "latent"): (SamplingConfig(7, "auto", "2P", math.inf, 20, 1e-4, 1.0, 10, LATENT_BACKEND), "uncond/latent_* (T 10 left textures blurred)"),
    ("generate", "table1"): (SamplingConfig(15, 4, None, 0.2, 10, 1e-4, 0.0, 10), "uncond/paper_sinddm15 (Table 1)"),
    ("generate", "gigapixel"): (SamplingConfig(7, "auto", 12, 0.2, 20, 1e-4, 1.0, 10, LATENT_BACKEND), "uncond/gigapixel, in a latent (nprobe 8, paper 40 with PQ)"),
    ("retarget", "pixels"): (SamplingConfig(15, "auto", "P", 0.2, 10, 1e-4, 1.0, 0), "retarget/pixel_*, T 10 (paper 25)"),
    ("symmetric", "pixels"): (SamplingConfig(15, "auto", "1.6P", 0.2, 10, 1e-4, 1.0, 0), "symmetric/pixel_*, T 10 (paper 25)"),
    ("symmetric", "latent"): (SamplingConfig(7, "auto", "2P", math.inf, 20, 1e-4, 1.0, 0, LATENT_BACKEND), "symmetric/latent_exact, T 20 (paper 50; T 10 blurred textures)"),
    ("tileable", "pixels"): (SamplingConfig(15, "auto", "2P", 0.2, 10, 1e-4, 1.0, 0), "tileable/pixel_*, T 10 (paper 25)"),
    ("tileable", "latent"): (SamplingConfig(7, "auto", "2P", math.inf, 20, 1e-4, 1.0, 0, LATENT_BACKEND), "tileable/latent_exact, T 20 (paper 50; T 10 blurred textures)"),
    ("analogy", "pixels"): (SamplingConfig(11, 3, None, 0.2, (10, 10, 50), 1e-2, 0.0, 1023), "structural_analogy/pixel_*"),
    ("stylize", "pixels"): (SamplingConfig(7, 1, None, 0.2, 200, 1e-4, 0.0, 10), "text_style/pixel_* (one level)"),
    ("inpaint", "pixels"): (SamplingConfig(15, "auto", "1.6P", 0.2, 10, 1e-4, 1.0, 0), "sidlite's (no official preset)"),
    ("edit", "pixels"): (SamplingConfig(15, "auto", "1.6P", 0.2, 10, 1e-4, 0.0, 0), "sidlite's (no official preset)"),
    ("upscale", "pixels"): (SamplingConfig(7, "auto", None, 0.2, 10, 1e-4, 0.0, 0), "sidlite's (no official preset)"),
}


def preset(application: str, space: str = "pixels") -> SamplingConfig:
    """The starting configuration of ``application`` in ``space`` ('pixels', 'latent', or a named variant);
    the command line's names work too: ``preset('generate-gigapixel')`` is ``preset('generate', 'gigapixel')``."""
    if space == "pixels" and (application, space) not in PRESETS and "-" in application:
        application, _, space = application.partition("-")
    if (application, space) in PRESETS:
        return PRESETS[application, space][0]
    if (application, "pixels") in PRESETS and space == "latent":
        raise SidliteError(f"{application} has no latent preset; run it in pixels")
    names = ", ".join(preset_name(*key) for key in PRESETS)
    raise SidliteError(f"no preset {preset_name(application, space)!r}; choose one of: {names}")


def preset_name(application: str, space: str) -> str:
    """The name a preset goes by on the command line: 'retarget', 'generate-latent', …"""
    return application if space == "pixels" else f"{application}-{space}"


#: Command names that differ from their application's: ``sidlite tile`` runs the tileable application.
COMMAND_APPLICATIONS = {"tile": "tileable"}


def by_name(name: str) -> tuple[str, str]:
    """(application, space) of a preset name such as 'generate-latent' (a command's name works too: 'tile')."""
    application, _, space = name.partition("-")
    application = COMMAND_APPLICATIONS.get(application, application)
    preset(application, space or "pixels")  # raises with the list of names when unknown
    return application, space or "pixels"


def format_presets() -> str:
    """The table of presets, one row each, as ``sidlite presets`` prints it."""
    header = ("preset", "P", "levels", "min side", "rho", "T", "sigma_min", "eta", "seed", "backend",
              "official preset / note")
    rows = [header]
    for (application, space), (c, note) in PRESETS.items():
        steps = str(c.steps) if isinstance(c.steps, int) else "[" + ", ".join(map(str, c.steps)) + "]"
        rows.append((preset_name(application, space), str(c.patch_size), str(c.num_levels), str(c.min_short_side),
                     "inf" if math.isinf(c.rho) else str(c.rho), steps, f"{c.sigma_min:g}", str(c.eta), str(c.seed),
                     str(c.backend), note))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
