"""Structural analogy: the layout of one image drawn with the patches of another.

The structure image's coarsest pyramid level is DDIM-inverted with *its own* patch denoiser up to a
chosen noise level, then that noisy state is denoised with the *style* image's coarsest denoiser: the
trajectory keeps the structure's low frequencies, and the style's patches paint them. Finer levels are
plain coarse-to-fine sampling with the style denoisers, blended to that coarse result. The noise level
is the knob: low stays close to the structure, higher lets the style move further from it (chapter 11
measures how far).
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import SamplingConfig, configure
from ..denoiser import ImageDenoiser
from ..errors import check, is_real, is_whole
from ..image_io import as_image
from ..plan import Plan
from ..pyramid import build_pyramid, pyramid_shapes, resize
from ..runtime import make_generator, resolve_device
from ..sampler import Hooks, invert, sample_pyramid
from ..schedule import Schedule
from ._shared import app_plan, planned_denoisers


class _StartFromInversion(Hooks):
    """Start the coarsest level from the inverted structure at step ``stop`` instead of pure noise."""

    def __init__(self, coarsest: int, inverted: torch.Tensor, stop: int):
        self.coarsest, self.inverted, self.stop = coarsest, inverted, stop

    def start(self, level, schedule, noise):
        if level == self.coarsest:
            return self.inverted, self.stop
        return super().start(level, schedule, noise)


def _short_side_shape(shape, short: int) -> tuple[int, int]:
    """(H, W) scaled so that the short side is ``short``, the aspect ratio kept."""
    h, w = shape
    ratio = short / min(h, w)
    return max(1, round(h * ratio)), max(1, round(w * ratio))


def structural_analogy(structure, style, *, noise_level: float | None = 0.5, output_short_side: int | None = None,
                       return_result: bool = False, config: SamplingConfig | None = None, **settings):
    """The structure image's layout rendered with the style image's patches, as a (3, H, W) tensor.

    Both images are resized so their short side is ``output_short_side`` (default: the style's short side);
    the output has the structure's aspect ratio. ``steps`` is per level, finest first (most of them go to
    the coarsest level, where the transfer happens). ``noise_level`` in (0, 1] is how far the structure is
    inverted (None: all the way). ``settings`` override ``config`` (default: the 'analogy' preset, the
    paper's P = 11, 3 levels, T = [10, 10, 50], σ_min = 0.01, η = 0, seed 1023). ``return_result`` gives
    the :class:`SampleResult` (every level's result) instead of the image.
    """
    fitted = config is None and "steps" not in settings  # the preset's steps, for other levels than its own
    config = configure("analogy", "pixels", config, settings)
    num_levels = config.num_levels
    check(isinstance(num_levels, int), f"structural analogy needs a whole number of levels, got {num_levels!r}")
    if fitted and not isinstance(config.steps, int) and len(config.steps) != num_levels:
        # other levels than the preset's: its finest levels' count on every finer level, its coarsest's last
        config = config.updated(steps=(config.steps[0],) * (num_levels - 1) + (config.steps[-1],))
    patch_size, eta = config.patch_size, config.eta
    device = resolve_device(config.device)
    structure, style = as_image(structure).to(device), as_image(style).to(device)
    check(structure.shape[0] == style.shape[0], f"the structure image has {structure.shape[0]} channels and the "
                                                f"style image {style.shape[0]}; give both in colour or both in grey")
    check(noise_level is None or (is_real(noise_level) and 0 < noise_level <= 1),
          f"noise_level must lie in (0, 1] (or None), got {noise_level!r}")
    per_level = config.steps_per_level(num_levels)
    short = min(style.shape[-2:]) if output_short_side is None else output_short_side
    check(is_whole(short) and short >= 1,
          f"output_short_side must be a positive integer, got {short!r}")
    style_shapes = pyramid_shapes(_short_side_shape(style.shape[-2:], short), num_levels)
    shapes = pyramid_shapes(_short_side_shape(structure.shape[-2:], short), num_levels)
    for kind, level in (("style", style_shapes[-1]), ("structure", shapes[-1])):
        check(min(level) >= patch_size, f"the coarsest {kind} level is {level[0]}x{level[1]}, smaller than the "
                                        f"{patch_size}x{patch_size} patch; use a larger {kind} image or short "
                                        f"side, fewer levels or a smaller patch size")
    # the structure's coarsest level, which the inversion denoises with its own patches, and the style's levels,
    # planned before either image is resized: a size that cannot fit is refused before any of it is made
    plan = app_plan(style_shapes + [shapes[-1]], shapes + [shapes[-1]], style.shape[0], config)
    style_levels = build_pyramid(resize(style, style_shapes[0]), style_shapes)
    structure_coarsest = build_pyramid(resize(structure, shapes[0]), shapes)[-1]
    own = ImageDenoiser.from_plan(plan.levels[-1], structure_coarsest, patch_size, config.rho)
    schedules = [Schedule.flow_linear(s, config.sigma_min) for s in per_level]
    coarse = schedules[-1]
    stop = coarse.index_for_noise_level(noise_level)
    generator = make_generator(config.seed, device)
    inverted = invert(own, structure_coarsest, coarse, stop, generator)
    del own  # its index goes before the style's levels are built, one at a time, as the plan counts
    denoisers = planned_denoisers(style_levels, shapes, config, plan=Plan(plan.levels[:-1], plan.budget, plan.device,
                                                                           plan.arguments))
    etas = [eta] * (num_levels - 1) + [0.0]
    result = sample_pyramid(denoisers, shapes, schedules, eta=etas, generator=generator,
                            hooks=_StartFromInversion(num_levels - 1, inverted, stop), progress=config.progress,
                            device=device, dtype=style.dtype)
    return result if return_result else result.image


def demo(folder, quick: bool = False) -> tuple[str, str, list[str]]:
    """This application's entry of ``sidlite demo``: the letter S drawn with a generated mosaic's patches.

    The gallery's inputs and settings live in one place, :mod:`sidlite.commands.demo`; this returns its
    (title, note, file names) after writing the files into ``folder``.
    """
    from pathlib import Path

    from ..commands.demo import analogy

    entry = analogy(Path(folder), quick)
    return entry.title, entry.note, [name for name, _ in entry.files]
