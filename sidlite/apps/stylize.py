"""Guided style: invert an image a little with its own patch denoiser, then denoise it back while a
guidance term pushes every estimate x̂₀ up the gradient of a score (CLIP for a text prompt, or a
weight-free objective such as a colour palette or a texture's patch statistics).

A single level, at the image's own resolution, in float32 (the only application that takes a gradient).
The denoiser keeps the result made of the image's own patches; the guidance decides which ones.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..clip import DEFAULT_VIEWS
from ..config import SamplingConfig, configure
from ..errors import check
from ..guidance import Guidance, Objective, PaletteObjective, PatchStatsObjective
from ..image_io import as_image
from ..runtime import make_generator, resolve_device
from ..sampler import Hooks, invert, sample_pyramid
from ..schedule import Schedule
from ._shared import planned_denoisers


class _GuidedFromInversion(Hooks):
    """Start at the inverted image and guide x̂ at every step (ε̂ then comes from the guided x̂)."""

    def __init__(self, inverted: torch.Tensor, stop: int, schedule: Schedule, guidance: Guidance):
        self.inverted, self.stop, self.schedule, self.guidance = inverted, stop, schedule, guidance

    def start(self, level, schedule, noise):
        return self.inverted, self.stop

    def constrain(self, level, t, x_hat):
        return self.guidance.guide(x_hat, self.schedule.sigmas[t], self.schedule.sigmas[self.stop])


def stylize(image, objective: Objective | None = None, *, prompt: str | None = None, clip_model: str | None = None,
            allow_download: bool = False, num_views: int = DEFAULT_VIEWS, noise_level: float = 0.3,
            strength: float = 1.0, momentum: float = 0.1, fill_factor: float = 0.5, iters: int = 1,
            return_result: bool = False,
            config: SamplingConfig | None = None, **settings):
    """``image`` (3, H, W) restyled by guidance, as a (3, H, W) tensor in [-1, 1].

    Give either ``objective`` (any callable score of a [-1, 1] image; see :mod:`sidlite.guidance`) or a
    text ``prompt`` (CLIP ``clip_model``, default ViT-B/32, loaded offline unless ``allow_download``).
    Defaults follow the paper's text-style preset: P = 7, T = 200, σ_min = 1e-4, noise level 0.3, η = 0,
    strength κ = 1, momentum ω = 0.1, fill factor 0.5, one guidance step per sampler step, seed 10
    (the sampling settings are the 'stylize' preset; ``settings`` override ``config``).
    ``return_result`` also gives access to the :class:`SampleResult`, returned as (result, guidance).
    """
    config = configure("stylize", "pixels", config, settings)
    steps, seed = config.steps, config.seed
    check((objective is None) != (prompt is None), "give exactly one of an objective and a text prompt")
    check(0 < noise_level <= 1, f"noise_level must lie in (0, 1], got {noise_level}")
    check(isinstance(steps, int) and steps >= 2, f"steps must be an integer >= 2, got {steps}")
    device = resolve_device(config.device)
    image = as_image(image).to(device=device, dtype=torch.float32)
    if prompt is not None:
        from ..clip import DEFAULT_CLIP, ClipObjective, load_clip

        model, tokenizer = load_clip(clip_model or DEFAULT_CLIP, device, allow_download)
        objective = ClipObjective(model, tokenizer, prompt, num_views=num_views, seed=seed)
    guidance = Guidance(objective, strength, momentum, fill_factor, iters)
    denoiser, = planned_denoisers([image], [tuple(image.shape[-2:])], config)
    schedule = Schedule.flow_linear(steps, config.sigma_min)
    stop = schedule.index_for_noise_level(noise_level)
    generator = make_generator(seed, device)
    inverted = invert(denoiser, image, schedule, stop, generator)
    result = sample_pyramid([denoiser], [tuple(image.shape[-2:])], [schedule], eta=config.eta, generator=generator,
                            hooks=_GuidedFromInversion(inverted, stop, schedule, guidance), progress=config.progress,
                            device=device, dtype=torch.float32)
    return (result, guidance) if return_result else result.image


def palette_style(image, palette, **options) -> torch.Tensor:
    """``image`` pulled toward the colours of ``palette`` (weight-free): stylize with a PaletteObjective."""
    return stylize(image, PaletteObjective(palette), **options)


def texture_style(image, texture, **options) -> torch.Tensor:
    """``image`` pulled toward ``texture``'s patch statistics (weight-free): stylize with a PatchStatsObjective."""
    return stylize(image, PatchStatsObjective(texture), **options)


def demo(folder, quick: bool = False) -> tuple[str, str, list[str]]:
    """This application's entry of ``sidlite demo``: the cat guided toward the coffee photo's colours.

    The gallery's inputs and settings live in one place, :mod:`sidlite.commands.demo`; this returns its
    (title, note, file names) after writing the files into ``folder``.
    """
    from pathlib import Path

    from ..commands.demo import style

    entry = style(Path(folder), quick)
    return entry.title, entry.note, [name for name, _ in entry.files]
