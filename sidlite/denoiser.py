"""The image-level denoiser: extract every patch of x_t, denoise each, fold back with the window."""
from __future__ import annotations

import math

import torch

from .backends import choose_backend, make_backend
from .errors import check
from .patches import extract_patches, fold_patches, patch_grid
from .runtime import reuse_freed_memory


class ImageDenoiser:
    """x̂₀ = fold(denoise(extract(x_t))) for images of any size, with patches from one image.

    The dataset is every P×P patch of ``image`` (C, H, W) at ``dataset_stride``; queries are the
    patches of x_t at ``query_stride``; ``rho`` is the fold window's width (inf: plain average).
    ``query_shape`` is the (H, W) of the images it will denoise, when known, so that ``backend='auto'``
    weighs the work of that many queries. ``backend_options`` go to the backend's constructor.
    """

    def __init__(self, image: torch.Tensor, patch_size: int, backend: str = "attention", rho: float = 0.2,
                 query_stride: int = 1, dataset_stride: int = 1, query_shape: tuple[int, int] | None = None,
                 **backend_options):
        check(patch_size >= 1, f"patch size must be >= 1, got {patch_size}")
        if image.device.type == "cpu":
            reuse_freed_memory()
        self.patch_size = patch_size
        self.channels = image.shape[0]
        self.rho = rho
        self.query_stride = query_stride
        dataset = extract_patches(image, patch_size, dataset_stride)
        if backend == "auto":
            queries = math.prod(patch_grid(*query_shape, patch_size, query_stride)) if query_shape else None
            backend = choose_backend(dataset.shape[0], dataset.shape[1], image.device, queries)
        self.backend = make_backend(backend, dataset, **backend_options)

    @property
    def num_patches(self) -> int:
        return self.backend.num_patches

    def __call__(self, x_t: torch.Tensor, alpha: float, sigma: float) -> torch.Tensor:
        """The image estimate x̂₀ for a noisy (C, H, W) image at (α, σ)."""
        check(x_t.shape[0] == self.channels, f"the image has {x_t.shape[0]} channels, the dataset {self.channels}")
        queries = extract_patches(x_t, self.patch_size, self.query_stride)
        estimates = self.backend.denoise(queries, alpha, sigma)
        return fold_patches(estimates, tuple(x_t.shape), self.patch_size, self.query_stride, self.rho)

    def __repr__(self) -> str:
        return f"ImageDenoiser(P={self.patch_size}, rho={self.rho}, backend={self.backend!r})"
