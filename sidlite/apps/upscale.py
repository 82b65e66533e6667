"""Super-resolution: the low-resolution input is the coarsest level, and finer levels are sampled at
upscaled sizes with the input's own patches as the dataset.

This is the coarse-to-fine sampler with its coarsest level fixed to the input and every finer level
(each about twice the last, up to ``factor`` times the input) denoised by the *input's* patches: the
image is assumed to be self-similar across scales, so its own patches are the best guess of what its
details look like one octave up (the assumption behind SinGAN's and Glasner et al.'s single-image
super-resolution). The Laplacian blend gives every finer level the low band of the level below it.

Because the last step of a level skips that blend, each level's result is then made consistent with the
level below it by iterative back-projection (Irani and Peleg): x ← x + up(y − down(x)), a few times.
That is the x-step of EPLL with A = downsampling (classical connections §6.4), and it makes the output,
downsampled back to the input's size, match the input.
"""
from __future__ import annotations

import math

import torch

from ..config import SamplingConfig, configure
from ..errors import check, is_real
from ..image_io import as_image
from ..pyramid import resize
from ..runtime import make_generator, resolve_device
from ..sampler import Hooks, sample_pyramid
from ..schedule import Schedule
from ._shared import planned_denoisers


def upscale_shapes(size: tuple[int, int], factor: float) -> list[tuple[int, int]]:
    """Level shapes finest first: the target, halved until the next halving would reach the input, then the input."""
    height, width = size
    levels = max(1, math.ceil(math.log2(factor) - 1e-9))
    target = (round(height * factor), round(width * factor))
    return [(round(target[0] / 2 ** k), round(target[1] / 2 ** k)) for k in range(levels)] + [tuple(size)]


def back_project(x: torch.Tensor, low: torch.Tensor, iterations: int) -> torch.Tensor:
    """x ← x + up(low − down(x)), ``iterations`` times: pull x's low band onto ``low``."""
    shape, low_shape = tuple(x.shape[-2:]), tuple(low.shape[-2:])
    for _ in range(iterations):
        x = x + resize(low - resize(x, low_shape), shape)
    return x


class FromInput(Hooks):
    """Coarsest level fixed to the input; each finer level starts from noise (or from the level below,
    re-noised to ``noise_level``) and is back-projected onto the level below at its last step."""

    def __init__(self, image: torch.Tensor, coarsest: int, noise_level: float | None, iterations: int):
        self.results = {coarsest: image}
        self.coarsest, self.noise_level, self.iterations = coarsest, noise_level, iterations

    def fixed_result(self, level):
        return self.results[level] if level == self.coarsest else None

    def start(self, level, schedule, noise):
        if self.noise_level is None:
            return super().start(level, schedule, noise)
        t = schedule.index_for_noise_level(self.noise_level)
        below = resize(self.results[level + 1], tuple(noise.shape[-2:]))
        return schedule.alphas[t] * below + schedule.sigmas[t] * noise, t

    def constrain(self, level, t, x_hat):
        if t != 1:
            return x_hat
        self.results[level] = back_project(x_hat, self.results[level + 1], self.iterations)
        return self.results[level]


def upscale(image, factor: float = 2.0, *, noise_level: float | None = 0.5, consistency: int = 4,
            config: SamplingConfig | None = None, **settings) -> torch.Tensor:
    """``image`` enlarged ``factor`` times (> 1), (3, round(H·factor), round(W·factor)) in [-1, 1].

    ``noise_level`` None samples each finer level from pure noise; a value in (0, 1] starts it from the
    level below, upsampled and re-noised to that level (lower keeps closer to a cubic upsampling).
    ``consistency`` is the number of back-projection iterations per level (0 turns it off). P defaults
    to 7: inputs to super-resolution are small. ``settings`` override ``config`` (default: the 'upscale'
    preset).
    """
    config = configure("upscale", "pixels", config, settings)
    patch_size = config.patch_size
    check(is_real(factor) and factor > 1, f"the upscaling factor must be a finite number larger than 1, got {factor!r}")
    check(noise_level is None or (is_real(noise_level) and 0 < noise_level <= 1),
          f"noise_level must lie in (0, 1] or be None, got {noise_level!r}")
    check(isinstance(consistency, int) and consistency >= 0, f"consistency must be a whole number >= 0, got {consistency}")
    device = resolve_device(config.device)
    image = as_image(image).to(device)
    check(min(image.shape[-2:]) >= patch_size, f"the {image.shape[1]}x{image.shape[2]} image is smaller than the "
                                               f"{patch_size}x{patch_size} patch; use a smaller `patch_size`")
    shapes = upscale_shapes(tuple(image.shape[-2:]), factor)
    check(shapes[0] != shapes[-1], f"a factor of {factor} leaves the {image.shape[1]}x{image.shape[2]} image at "
                                   f"its size (sides are whole pixels); use a larger factor")
    denoisers = planned_denoisers([image] * (len(shapes) - 1), shapes[:-1], config, shared_index=True) + [None]
    hooks = FromInput(image, len(shapes) - 1, noise_level, consistency)
    schedules = [Schedule.flow_linear(s, config.sigma_min) for s in config.steps_per_level(len(shapes))]
    result = sample_pyramid(denoisers, shapes, schedules, eta=config.eta, generator=make_generator(config.seed, device),
                            hooks=hooks, progress=config.progress, device=device, dtype=image.dtype).image
    return result.clamp_(-1, 1)  # back-projection's correction can overshoot [-1, 1] at sharp edges


def demo(folder, quick: bool = False) -> tuple[str, str, list[str]]:
    """This application's entry of ``sidlite demo``: a small cat enlarged 4x beside the bicubic enlargement.

    The gallery's inputs and settings live in one place, :mod:`sidlite.commands.demo`; this returns its
    (title, note, file names) after writing the files into ``folder``.
    """
    from pathlib import Path

    from ..commands.demo import super_resolution

    entry = super_resolution(Path(folder), quick)
    return entry.title, entry.note, [name for name, _ in entry.files]
