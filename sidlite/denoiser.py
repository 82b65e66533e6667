"""The image-level denoiser: extract the patches of x_t, denoise each, fold them back with the window.

It streams: the query image is cut into bands of patch-grid rows (each band's pixels overlap the next
by P − stride rows, the halo), and each band is extracted, denoised, windowed and fold-added into one
numerator image before the next band starts. The fold's denominator, the overlap-added window, is
separable (the window is an outer product and the patch grid a product of two 1-D grids), so it is two
vectors, never a per-patch array. Peak memory is the images themselves plus one band, whatever the
output size; the result equals the whole-image fold up to float rounding. Where a query stride stops
short of the bottom or right edge, one more row and column of patches flush with those edges are folded
too, so every pixel is covered (the paper's code leaves them 0).
"""
from __future__ import annotations

import math
import torch
import torch.nn.functional as F

from .backends import BackendSpec, make_backend
from .errors import check
from .patches import axis_coverage, edge_gap, extract_patches, fold_windowed, gaussian_window, patch_grid
from .patchsets import ImagePatchSet
from .plan import MAX_BAND_BYTES, LevelPlan, check_query_stride
from .runtime import default_memory_budget, parse_bytes


def known_patch_grid(known: torch.Tensor, patch_size: int, stride: int = 1) -> torch.Tensor:
    """(rows, cols) grid that is True where the P×P patch lies wholly in the boolean (H, W) ``known`` mask."""
    unknown = (~known.bool()).float()[None, None]
    return F.max_pool2d(unknown, patch_size, stride=stride)[0, 0] == 0


class ImageDenoiser:
    """x̂₀ = fold(denoise(extract(x_t))) for images of any size, with patches from one image.

    The dataset is every P×P patch of ``image`` (C, H, W) at ``dataset_stride``, gathered on demand
    (:class:`~sidlite.patchsets.ImagePatchSet`), optionally only those lying wholly in the boolean (H, W)
    mask ``known``; queries are the patches of x_t at ``query_stride`` (and, where that stride stops short of
    the bottom or right edge, a row and a column of patches flush with it); ``rho`` is the fold window's
    width (inf: plain average). ``backend`` is a name or spec ('auto', 'topk:nprobe=4', …);
    ``query_shape`` is the (H, W) of the images it will denoise, when known, so that 'auto' weighs the
    work of that many queries. Query bands hold ``band_rows`` patch-grid rows, or as many as fit in
    ``memory_budget`` (bytes or text such as '2GB'; default: 60 % of the free memory), at most
    :data:`sidlite.plan.MAX_BAND_BYTES`.
    """

    def __init__(self, image: torch.Tensor, patch_size: int, backend="attention", rho: float = 0.2,
                 query_stride: int = 1, dataset_stride: int = 1, query_shape: tuple[int, int] | None = None,
                 known: torch.Tensor | None = None, band_rows: int | None = None, memory_budget=None,
                 **backend_options):
        check(isinstance(patch_size, int) and patch_size >= 1, f"patch size must be a positive integer, got {patch_size}")
        check(rho > 0, f"rho must be positive (inf for a plain average), got {rho}")
        check(band_rows is None or (isinstance(band_rows, int) and band_rows >= 1),
              f"band_rows must be a whole number >= 1, got {band_rows}")
        check_query_stride(query_stride, patch_size)
        self.patch_size = patch_size
        self.channels = image.shape[0]
        self.rho = rho
        self.query_stride = query_stride
        keep = None
        if known is not None:
            keep = known_patch_grid(known.to(image.device), patch_size, dataset_stride)
            check(bool(keep.any()), f"no {patch_size}x{patch_size} patch lies wholly in the known region; "
                                    f"use a smaller hole or patch size")
        self.patches = ImagePatchSet(image, patch_size, dataset_stride, keep=keep)
        queries = math.prod(patch_grid(*query_shape, patch_size, query_stride)) if query_shape else None
        self.backend = make_backend(backend, self.patches, num_queries=queries, **backend_options)
        self.band_rows = band_rows
        self.memory_budget = parse_bytes(memory_budget) if memory_budget is not None else None
        window = gaussian_window(patch_size, rho, image.dtype, image.device)
        self.window = window.flatten().repeat(self.channels)

    @classmethod
    def from_plan(cls, level: LevelPlan, image: torch.Tensor, patch_size: int, rho: float,
                  known: torch.Tensor | None = None) -> "ImageDenoiser":
        """The denoiser a level plan describes (:mod:`sidlite.plan`): its backend and options, query stride
        and band height, over the patches of ``image`` (those wholly in ``known``, when given)."""
        return cls(image, patch_size, BackendSpec(level.backend, level.options), rho, query_stride=level.query_stride,
                   band_rows=level.band_rows, known=known)

    @property
    def num_patches(self) -> int:
        return self.backend.num_patches

    def bytes_per_grid_row(self, width: int) -> int:
        """Working memory of one patch-grid row of a ``width``-pixel-wide query image."""
        cols = patch_grid(self.patch_size, width, self.patch_size, self.query_stride)[1]
        dim = self.backend.dim
        # queries, estimates and their transposed windowed copy, the backend's own work, the band's fold
        return cols * (3 * 4 * dim + self.backend.bytes_per_query()) + 4 * self.channels * self.query_stride * width

    def rows_per_band(self, height: int, width: int) -> int:
        """Patch-grid rows per band for an (H, W) query image: ``band_rows``, or what the budget allows."""
        rows = patch_grid(height, width, self.patch_size, self.query_stride)[0]
        if self.band_rows is not None:
            return min(rows, self.band_rows)
        device = self.window.device
        budget = min(self.memory_budget or default_memory_budget(device),
                     MAX_BAND_BYTES.get(device.type, MAX_BAND_BYTES["cpu"]))
        return max(1, min(rows, budget // self.bytes_per_grid_row(width)))

    def __call__(self, x_t: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        """The image estimate x̂₀ of a noisy (C, H, W) image, or of a (B, C, H, W) batch, at (α, σ).

        A batch's queries meet the backend together (one index, B times larger products); each band
        then holds 1/B as many grid rows, so a band's memory does not grow with the batch.
        """
        check(x_t.dim() in (3, 4) and x_t.shape[-3] == self.channels,
              f"expected a ({self.channels}, H, W) image or a batch of them, got shape {tuple(x_t.shape)}")
        images = x_t if x_t.dim() == 4 else x_t[None]
        count, channels, height, width = images.shape
        p, s = self.patch_size, self.query_stride
        rows, cols = patch_grid(height, width, p, s)
        band_queries = count * max(1, self.rows_per_band(height, width) // count) * cols
        window = self.window.to(x_t.device, x_t.dtype)
        numerator = torch.zeros_like(images)
        # One buffer serves every band's queries (and, where the fold is torch's, their windowed estimates):
        # fresh pages cost a first touch (about 25 ms per 100 MB on a 2-core Xeon), reused ones do not.
        buffer = images.new_empty(min(band_queries, count * rows * cols) * self.backend.dim)
        for strip in self._strips(height, width):
            self._fold_strip(images[strip], numerator[strip], alpha, sigma, window, band_queries, buffer)
        del buffer
        device = str(x_t.device)
        coverage = (axis_coverage(height, p, s, self.rho, x_t.dtype, device, to_edge=True)[:, None]
                    * axis_coverage(width, p, s, self.rho, x_t.dtype, device, to_edge=True)[None, :])
        # every pixel is covered; only a window so narrow that its edge weights underflow leaves a 0/0
        estimate = torch.nan_to_num(numerator.div_(coverage), nan=0.0)
        return estimate if x_t.dim() == 4 else estimate[0]

    def _strips(self, height: int, width: int) -> list[tuple[slice, ...]]:
        """The regions whose patches at the query stride are the query positions: the whole image, and where
        the stride stops short of the bottom or right edge (:func:`~sidlite.patches.edge_gap`) one more row
        of patches flush with the bottom, one more column flush with the right, and their corner (the
        paper's code leaves those last rows and columns 0). The positions stay one set of rows times one
        set of columns, so the coverage stays separable (``axis_coverage(..., to_edge=True)``)."""
        p, s, every = self.patch_size, self.query_stride, slice(None)
        bottom, right = edge_gap(height, p, s), edge_gap(width, p, s)
        last_rows, last_cols = slice(height - p, None), slice(width - p, None)
        strips = [(every, every, every, every)]
        strips += [(every, every, every, last_cols)] if right else []
        strips += [(every, every, last_rows, every)] if bottom else []
        strips += [(every, every, last_rows, last_cols)] if bottom and right else []
        return strips

    def _fold_strip(self, strip, target, alpha, sigma, window, band_queries: int, buffer: torch.Tensor) -> None:
        """Denoise the patches of ``strip`` (B, C, h, w) at the query stride, at most ``band_queries`` at a time
        (bands of patch-grid rows, extracted into ``buffer``), and fold them with the window into ``target``."""
        count, p, s = strip.shape[0], self.patch_size, self.query_stride
        rows, cols = patch_grid(strip.shape[-2], strip.shape[-1], p, s)
        band = max(1, band_queries // (count * cols))
        for first in range(0, rows, band):
            last = min(rows, first + band)
            top, bottom = first * s, (last - 1) * s + p
            per_image = (last - first) * cols
            queries = buffer[:count * per_image * self.backend.dim].view(count * per_image, -1)
            for i, image in enumerate(strip):
                extract_patches(image[:, top:bottom], p, s, out=queries[i * per_image:(i + 1) * per_image])
            estimates = self.backend.denoise(queries, alpha, sigma)
            check(estimates.untyped_storage().data_ptr() != buffer.untyped_storage().data_ptr(),
                  "a backend returned its queries' memory; it must return a new tensor")
            fold_windowed(target[:, :, top:bottom], estimates, window, last - first, cols, p, s, scratch=queries)
            del estimates

    def __repr__(self) -> str:
        return f"ImageDenoiser(P={self.patch_size}, rho={self.rho}, backend={self.backend!r})"
