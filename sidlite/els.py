"""From one image to many: closed-form denoisers over a training set of images (chapter 13).

Two closed-form denoisers of a data set of K images, both built from the posterior mean of chapter 01:

* :class:`GlobalDenoiser` — the optimal denoiser of the empirical distribution: each whole training
  image is one data point, D(x) = Σ_k softmax_k(−‖x − α·y_k‖²/2σ²)·y_k. Sampling with it memorises.
* :class:`LocalPatchDenoiser` — the *equivariant local score (ELS) machine* of Kamb and Ganguli
  (ICML 2025): the optimal denoiser constrained to be **local** (each output pixel sees only the P×P
  neighbourhood of the noisy image around it) and **equivariant** (the same function at every
  position). Its optimum is the posterior mean of the centre pixel over *all* P×P patches of *all*
  training images, which is sidlite's patch denoiser with a centre-weighted fold: the fold window of
  width ρ → 0 keeps only the centre pixel of each patch estimate, ρ > 0 blends the neighbouring
  estimates as sidlite does for one image. With one training image it *is* chapter 02's
  :class:`~sidlite.ImageDenoiser`; with patches as large as the image it *is* :class:`GlobalDenoiser`.

Both are image denoisers in the sampler's sense (``.channels`` and ``__call__(x_t, alpha, sigma)``), so
:func:`sidlite.sample_pyramid` with a single level samples from them; :func:`sample_images` does that
for several seeds at once. :class:`ConvDenoiser` and :func:`train_conv_denoiser` give the small
convolutional network that chapter 13 compares them with. :func:`nearest_distances` and
:func:`nearest_distances_up_to_shift` measure a sample's novelty: its distance to the nearest training
image, in place or moved around the torus.

Boundaries. With ``pad=None`` only the patches that lie inside an image are used (sidlite's
convention; pixels near the border are covered by fewer patches). With ``pad='circular'`` images are
treated as periodic, so every pixel has a centred patch and the machine is exactly equivariant on the
torus (match it with a network whose convolutions pad circularly). With a number ``c``, training
images are padded with the constant c and noisy images with α·c (the clean pad value under the forward
process x = α·y + σ·ε, no noise), like the zero padding of Kamb and Ganguli's boundary-aware machine.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .backends import make_backend
from .errors import check
from .patches import extract_patches, fold_patches, gaussian_window
from .patchsets import ImagePatchSet
from .runtime import make_generator
from .sampler import sample_pyramid
from .schedule import Schedule

Pad = str | float | None


def as_image_list(images: torch.Tensor | Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """A list of (C, H, W) images from a (K, C, H, W) tensor, one (C, H, W) image or a list of them."""
    if isinstance(images, torch.Tensor):
        check(images.dim() in (3, 4), f"expected (C, H, W) or (K, C, H, W) images, got {tuple(images.shape)}")
        return [images] if images.dim() == 3 else list(images)
    images = list(images)
    check(len(images) >= 1, "a training set needs at least one image")
    return images


def pad_image(image: torch.Tensor, margin: int, pad: Pad, scale: float = 1.0) -> torch.Tensor:
    """Pad a (C, H, W) image by ``margin`` on every side: None (no padding), 'circular', or a constant·scale."""
    if pad is None or margin == 0:
        return image
    if pad == "circular":
        rows = torch.arange(-margin, image.shape[1] + margin, device=image.device) % image.shape[1]
        cols = torch.arange(-margin, image.shape[2] + margin, device=image.device) % image.shape[2]
        return image[:, rows][:, :, cols]
    check(isinstance(pad, (int, float)) and not isinstance(pad, bool),
          f"pad must be None, 'circular' or a number, got {pad!r}")
    return F.pad(image, (margin,) * 4, mode="constant", value=float(pad) * scale)


class LocalPatchDenoiser:
    """The equivariant local score machine: a patch posterior mean over a training set, folded.

    ``images``: the training set, (K, C, H, W) or a list of (C, H, W) images (sizes may differ).
    ``patch_size`` P (odd when ``pad`` is set, so that every pixel has a centred patch); ``rho`` the fold
    window's width (→ 0: the centre pixel of each patch estimate, Kamb and Ganguli's read-out; inf: a
    plain average); ``pad`` the boundary rule (module docstring); ``backend`` any sidlite backend name.

    ``x̂₀(x_t) = crop(fold_ρ(D(extract(pad(x_t)))))`` where D is the closed-form denoiser of every P×P
    patch of every (padded) training image. With ``pad='circular'`` the fold wraps around too, so the
    machine commutes exactly with circular shifts of the image.
    """

    def __init__(self, images: torch.Tensor | Sequence[torch.Tensor], patch_size: int, rho: float = 0.2,
                 pad: Pad = None, backend: str = "attention", **backend_options):
        images = as_image_list(images)
        check(patch_size >= 1, f"patch size must be >= 1, got {patch_size}")
        check(pad is None or patch_size % 2 == 1, f"a padded machine needs an odd patch size, got {patch_size}")
        self.patch_size, self.rho, self.pad = patch_size, rho, pad
        self.channels = images[0].shape[0]
        self.margin = patch_size // 2 if pad is not None else 0
        self.patch_set = ImagePatchSet([pad_image(im, self.margin, pad) for im in images], patch_size)
        # A training set of many small images goes to the backend as one dense matrix: an image-backed
        # set computes its statistics with one small operation per image (slow for thousands of digits).
        self.backend = make_backend(backend, self.patch_set.dense(), **backend_options)

    @property
    def num_patches(self) -> int:
        return self.patch_set.size

    def __call__(self, x_t: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        """The image estimate x̂₀ for a noisy (C, H, W) image, or a batch (B, C, H, W), at (α, σ).

        A batch is denoised in one backend call (all its patches are the queries).
        """
        check(x_t.dim() in (3, 4) and x_t.shape[-3] == self.channels,
              f"expected ({self.channels}, H, W) images, got {tuple(x_t.shape)}")
        batch = x_t if x_t.dim() == 4 else x_t[None]
        padded = [pad_image(x, self.margin, self.pad, scale=alpha) for x in batch]
        queries = torch.cat([extract_patches(x, self.patch_size) for x in padded])
        estimates = self.backend.denoise(queries, alpha, sigma).split(queries.shape[0] // len(padded))
        out = torch.stack([self._fold(e, tuple(x.shape)) for e, x in zip(estimates, padded)])
        return out if x_t.dim() == 4 else out[0]

    def _fold(self, estimates: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
        """Fold onto the padded canvas and cut the image out; circular padding wraps the margins around."""
        m, height, width = self.margin, shape[1] - 2 * self.margin, shape[2] - 2 * self.margin
        if self.pad != "circular" or m == 0:
            return fold_patches(estimates, shape, self.patch_size, 1, self.rho)[:, m:m + height, m:m + width]
        check(m <= height and m <= width, f"circular padding needs images of at least {m}x{m} pixels")
        # the fold's numerator and window sums, each wrapped: padded index p is pixel (p - m) mod size
        channels = shape[0]
        window = gaussian_window(self.patch_size, self.rho, estimates.dtype, estimates.device).flatten().repeat(channels)
        columns = torch.cat([estimates * window, window.expand_as(estimates)], 1).T.contiguous()
        sums = torch.cat([F.fold(part[None], shape[1:], self.patch_size)[0] for part in columns.chunk(2)])
        sums[:, m:2 * m] += sums[:, height + m:]
        sums[:, height:height + m] += sums[:, :m]
        sums[:, :, m:2 * m] += sums[:, :, width + m:]
        sums[:, :, width:width + m] += sums[:, :, :m]
        sums = sums[:, m:m + height, m:m + width]
        return torch.nan_to_num(sums[:channels] / sums[channels:], nan=0.0)

    def __repr__(self) -> str:
        return (f"LocalPatchDenoiser(P={self.patch_size}, rho={self.rho}, pad={self.pad!r}, "
                f"N={self.num_patches}, backend={self.backend!r})")


class GlobalDenoiser:
    """The optimal denoiser of K training images, each one data point: it can only reproduce them."""

    def __init__(self, images: torch.Tensor | Sequence[torch.Tensor], backend: str = "attention", **backend_options):
        images = as_image_list(images)
        check(len({tuple(im.shape) for im in images}) == 1, "the global denoiser needs images of one shape")
        self.shape = tuple(images[0].shape)
        self.channels = self.shape[0]
        self.backend = make_backend(backend, torch.stack(images).reshape(len(images), -1), **backend_options)

    @property
    def num_patches(self) -> int:
        return self.backend.num_patches

    def __call__(self, x_t: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        """x̂₀ for a noisy image of the training shape, or a batch (B, *shape)."""
        check(tuple(x_t.shape[-3:]) == self.shape and x_t.dim() in (3, 4),
              f"expected {self.shape} images, got {tuple(x_t.shape)}")
        flat = x_t.reshape(-1, math.prod(self.shape))
        return self.backend.denoise(flat, alpha, sigma).reshape(x_t.shape)

    def __repr__(self) -> str:
        return f"GlobalDenoiser(K={self.num_patches}, shape={self.shape}, backend={self.backend!r})"


class _Strip:
    """A batch denoiser seen by the one-image sampler: B images of width W side by side in one strip."""

    def __init__(self, denoiser, count: int, width: int):
        self.denoiser, self.count, self.width = denoiser, count, width
        self.channels = denoiser.channels

    def __call__(self, x_t: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        channels, height, _ = x_t.shape
        batch = x_t.reshape(channels, height, self.count, self.width).permute(2, 0, 1, 3)
        out = self.denoiser(batch, alpha, sigma)
        return out.permute(1, 2, 0, 3).reshape(x_t.shape)


def sample_images(denoiser, shape: tuple[int, int], num_samples: int, steps: int = 20, eta: float = 0.0,
                  seed: int = 0, device: torch.device | str = "cpu", dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """``num_samples`` single-scale samples (num, C, H, W) from a denoiser that takes a batch (B, C, H, W).

    The samples run side by side as one strip (C, H, num·W) through :func:`sidlite.sample_pyramid` with
    one level, whose generator is seeded ``seed``; every denoiser call sees the whole batch. Two
    denoisers sampled with the same seed, shape and count start from the same noise (and, at η = 0,
    draw nothing else), so their samples can be compared one to one.
    """
    check(num_samples >= 1, f"num_samples must be >= 1, got {num_samples}")
    height, width = shape
    result = sample_pyramid([_Strip(denoiser, num_samples, width)], [(height, num_samples * width)],
                            [Schedule.flow_linear(steps)], eta=eta, progress=False, device=device, dtype=dtype,
                            generator=make_generator(seed, device))
    return result.image.reshape(-1, height, num_samples, width).permute(2, 0, 1, 3).contiguous()


def nearest_distances(samples: torch.Tensor, training: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """RMS distance (per value) from each sample to its nearest training image, and that image's index."""
    a = samples.reshape(samples.shape[0], -1).double()
    b = training.reshape(training.shape[0], -1).double()
    squared = (a ** 2).sum(1, keepdim=True) - 2 * a @ b.T + (b ** 2).sum(1)[None]
    index = squared.argmin(1)
    exact = ((a - b[index]) ** 2).mean(1).sqrt()   # recomputed directly: 0 means an exact copy
    return exact, index


def nearest_distances_up_to_shift(samples: torch.Tensor, training: torch.Tensor) -> torch.Tensor:
    """RMS distance (per value) from each (C, H, W) sample to its nearest training image under every one of the
    H·W circular shifts of the sample. On the torus a circular machine's sample can be a training image
    moved a few pixels, which :func:`nearest_distances` counts as new; this distance is ~0 for such a copy."""
    height, width = samples.shape[-2:]
    shifted = [nearest_distances(samples.roll((dy, dx), (-2, -1)), training)[0]
               for dy in range(height) for dx in range(width)]
    return torch.stack(shifted).amin(0)


def r_squared(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-sample coefficient of determination 1 − ‖target − prediction‖² / ‖target − mean(target)‖²."""
    p = prediction.reshape(prediction.shape[0], -1).double()
    t = target.reshape(target.shape[0], -1).double()
    return 1 - ((t - p) ** 2).sum(1) / ((t - t.mean(1, keepdim=True)) ** 2).sum(1)


@contextmanager
def torch_threads(count: int | None):
    """Run a block with ``count`` intra-op threads (None: unchanged), restoring the setting afterwards.

    Small convolutions are dominated by thread synchronisation: on a busy 2-core machine one thread
    trains the chapter's network tens of times faster than two.
    """
    before = torch.get_num_threads()
    if count:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class ConvDenoiser(nn.Module):
    """A small all-convolutional x̂₀-predictor: local (receptive field ``1 + 2·(layers)``·⌊k/2⌋) and equivariant.

    Input: the noisy image and a constant channel holding σ; output: the clean estimate. 1×1 layers
    between the k×k ones add depth without widening the receptive field. ``padding_mode`` 'circular'
    matches :class:`LocalPatchDenoiser` with ``pad='circular'``.
    """

    def __init__(self, channels: int = 1, width: int = 64, layers: int = 2, kernel: int = 3,
                 padding_mode: str = "circular"):
        super().__init__()
        check(layers >= 1 and kernel % 2 == 1, "a ConvDenoiser needs >= 1 layer and an odd kernel")
        blocks, inputs = [], channels + 1
        for _ in range(layers):
            blocks += [nn.Conv2d(inputs, width, kernel, padding=kernel // 2, padding_mode=padding_mode), nn.GELU(),
                       nn.Conv2d(width, width, 1), nn.GELU()]
            inputs = width
        blocks.append(nn.Conv2d(width, channels, 1))
        self.net = nn.Sequential(*blocks)
        self.channels = channels
        self.receptive_field = 1 + layers * (kernel - 1)

    def forward(self, x_t: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x_t (B, C, H, W), sigma (B,) → x̂₀ (B, C, H, W)."""
        level = sigma.reshape(-1, 1, 1, 1).to(x_t.dtype).expand(-1, 1, *x_t.shape[2:])
        return self.net(torch.cat([x_t, level], 1))


class NetworkDenoiser:
    """A trained x̂₀-network as an image denoiser for the sampler (``.channels``, ``__call__``)."""

    def __init__(self, network: ConvDenoiser, threads: int | None = 1):
        self.network = network.eval()
        self.channels = network.channels
        self.threads = threads

    @torch.no_grad()
    def __call__(self, x_t: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        with torch_threads(self.threads):
            return self._apply(x_t, sigma)

    def _apply(self, x_t: torch.Tensor, sigma: float) -> torch.Tensor:
        param = next(self.network.parameters())
        batch = x_t if x_t.dim() == 4 else x_t[None]
        sigma_t = torch.full((batch.shape[0],), float(sigma), dtype=param.dtype, device=param.device)
        out = self.network(batch.to(param.dtype), sigma_t).to(x_t.dtype)
        return out if x_t.dim() == 4 else out[0]


def train_conv_denoiser(images: torch.Tensor, schedule: Schedule, network: ConvDenoiser | None = None,
                        iterations: int = 2000, batch_size: int = 128, lr: float = 2e-3, seed: int = 0,
                        seconds: float | None = None, device: torch.device | str = "cpu",
                        threads: int | None = 1) -> tuple[ConvDenoiser, list[float]]:
    """Train ``network`` (default :class:`ConvDenoiser`) to predict y from α_t·y + σ_t·ε, t uniform in 1..T.

    Plain MSE denoising on the schedule's own noise levels (the only ones the sampler visits), Adam
    with a cosine learning-rate decay; stops after ``iterations`` or ``seconds``, whichever comes
    first; ``threads`` intra-op threads while training (:func:`torch_threads`). Returns the network
    and the loss of every iteration.
    """
    with torch_threads(threads):
        return _train(images, schedule, network, iterations, batch_size, lr, seed, seconds, device)


def _train(images, schedule, network, iterations, batch_size, lr, seed, seconds, device):
    images = images.to(device)
    if network is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            network = ConvDenoiser(images.shape[1])
    network = network.to(device).train()
    alphas = torch.tensor(schedule.alphas[1:], dtype=images.dtype, device=device)
    sigmas = torch.tensor(schedule.sigmas[1:], dtype=images.dtype, device=device)
    optimizer = torch.optim.Adam(network.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, iterations)
    generator = make_generator(seed, device)
    losses: list[float] = []
    start = time.perf_counter()
    for _ in range(iterations):
        rows = torch.randint(0, images.shape[0], (batch_size,), generator=generator, device=device)
        t = torch.randint(0, len(alphas), (batch_size,), generator=generator, device=device)
        clean = images[rows]
        noise = torch.randn(clean.shape, generator=generator, device=device, dtype=images.dtype)
        noisy = alphas[t].view(-1, 1, 1, 1) * clean + sigmas[t].view(-1, 1, 1, 1) * noise
        loss = F.mse_loss(network(noisy, sigmas[t]), clean)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        decay.step()
        losses.append(loss.item())
        if seconds is not None and time.perf_counter() - start > seconds:
            break
    return network.eval(), losses


__all__ = ["LocalPatchDenoiser", "GlobalDenoiser", "ConvDenoiser", "NetworkDenoiser", "sample_images",
           "train_conv_denoiser", "torch_threads", "nearest_distances", "nearest_distances_up_to_shift",
           "r_squared", "pad_image", "as_image_list"]
