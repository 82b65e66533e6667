"""GPNN (Granot, Feinstein, Shocher, Bagon, Irani, CVPR 2022): generation by nearest-patch voting.

Coarse to fine over a pyramid that shrinks by 3/4 per level. The coarsest output starts as the shrunken
input plus strong Gaussian noise. At each level every output patch (query) is replaced by the input patch
(value) whose key is nearest under GPNN's *normalised* score, and the chosen patches are averaged back
into an image; this is repeated ``iterations`` times. On the first iteration of a finer level the keys
are the patches of the coarser input level upsampled (blurry like the upsampled output), afterwards the
keys are the values themselves. The score of query i against key j is

    S_ij = D_ij / (α + min_ℓ D_ℓj),     D_ij = ‖q_i − k_j‖² (sum over the patch, [0, 1] pixel units)

so a key that no query is close to gets a small denominator and wins more easily: small α pushes every
input patch to be used somewhere (completeness); α = ∞ is plain nearest-neighbour voting, the σ → 0,
k = 1 limit of the closed-form denoiser (chapter 03). Our code, after the paper's description.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from ..errors import check
from ..patches import extract_patches, fold_patches
from ..pyramid import resize
from ._common import noisy_pyramid_start


def _dense_normalized(queries: torch.Tensor, keys: torch.Tensor, alpha: float, chunk: int = 2048) -> torch.Tensor:
    """Exact argmin_j D_ij / (α + min_ℓ D_ℓj) by two chunked dense passes (float32 ranking)."""
    q, k = queries.float(), keys.float()
    kk, qq = (k * k).sum(1), (q * q).sum(1)
    if math.isinf(alpha):
        return torch.cat([torch.addmm(kk, q[s:s + chunk], k.T, alpha=-2.0).argmin(1) for s in range(0, q.shape[0], chunk)])
    column_min = torch.full((k.shape[0],), float("inf"))
    for s in range(0, q.shape[0], chunk):
        d = torch.addmm(kk, q[s:s + chunk], k.T, alpha=-2.0).add_(qq[s:s + chunk, None]).clamp_min_(0)
        column_min = torch.minimum(column_min, d.amin(0))
    denominator = alpha + column_min / 4  # [-1, 1] differences to [0, 1] pixel units
    out = []
    for s in range(0, q.shape[0], chunk):
        d = torch.addmm(kk, q[s:s + chunk], k.T, alpha=-2.0).add_(qq[s:s + chunk, None]).clamp_min_(0)
        out.append((d / 4 / denominator).argmin(1))
    return torch.cat(out)


class _Proposals:
    """Candidate rows for a query: a k-d tree over the leading principal coordinates of the rows."""

    def __init__(self, rows: torch.Tensor, rank: int = 8):
        from scipy.spatial import cKDTree  # scipy comes with scikit-image

        from ..metrics import _principal_directions

        self.rows = rows.float()
        self.mean, self.directions = _principal_directions(self.rows, rank)
        self.tree = cKDTree(((self.rows.double() - self.mean) @ self.directions).numpy())

    def __call__(self, queries: torch.Tensor, k: int) -> torch.Tensor:
        k = min(k, self.rows.shape[0])
        _, index = self.tree.query(((queries.double() - self.mean) @ self.directions).numpy(), k=k, workers=-1)
        return torch.from_numpy(np.asarray(index).reshape(queries.shape[0], k)).long()


def _approx_normalized(queries, keys, alpha, proposals: _Proposals | None = None, k: int = 8) -> torch.Tensor:
    """argmin of the normalised score among ``k`` proposed keys per query. min_ℓ D_ℓj is taken over the
    queries that proposed key j (an upper bound on it; keys no query proposed are never candidates)."""
    q, keys = queries.float(), keys.float()
    proposals = proposals or _Proposals(keys)
    cand = proposals(q, k)
    d = torch.empty(cand.shape, dtype=torch.float32)
    for s in range(0, q.shape[0], 4096):
        d[s:s + 4096] = ((q[s:s + 4096, None, :] - keys[cand[s:s + 4096]]) ** 2).sum(-1) / 4
    if not math.isinf(alpha):
        column_min = torch.full((keys.shape[0],), float("inf")).scatter_reduce(0, cand.reshape(-1), d.reshape(-1), "amin")
        d = d / (alpha + column_min[cand])
    return cand.gather(1, d.argmin(1, keepdim=True))[:, 0]


def normalized_nearest(queries: torch.Tensor, keys: torch.Tensor, alpha: float = 0.005,
                       search: str = "exact") -> torch.Tensor:
    """For each query row, the key row minimising GPNN's score D_ij / (α + min_ℓ D_ℓj) (distances as
    sums of squares in [0, 1] pixel units of [-1, 1] rows). ``search`` 'exact' scans densely; 'approx'
    scores the 8 keys nearest in the leading principal coordinates (much faster on large images)."""
    check(alpha > 0, f"alpha must be positive (inf for plain nearest neighbours), got {alpha}")
    check(search in ("exact", "approx"), f"search must be 'exact' or 'approx', got {search!r}")
    if search == "exact":
        return _dense_normalized(queries, keys, alpha)
    return _approx_normalized(queries, keys, alpha)


@torch.no_grad()
def gpnn(image, *, size: tuple[int, int] | None = None, seed: int = 0, patch_size: int = 7,
         alpha: float = 0.005, ratio: float = 0.75, coarsest: int = 14, noise: float = 0.75,
         iterations: int = 10, search: str = "auto") -> torch.Tensor:
    """One GPNN sample (3, H, W) in [-1, 1] from one image.

    ``noise`` is the standard deviation of the noise added at the coarsest level in [0, 1] pixel units
    (GPNN's 0.75); ``coarsest`` the short side of the coarsest level in pixels; ``search`` 'exact',
    'approx' or 'auto' (exact below 4096 patches, approx above; see :func:`normalized_nearest`).
    """
    check(search in ("exact", "approx", "auto"), f"search must be 'exact', 'approx' or 'auto', got {search!r}")
    check(isinstance(iterations, int) and iterations >= 1, f"iterations must be an integer >= 1, got {iterations}")
    image, shapes, levels, outs, generator, x = noisy_pyramid_start(image, ratio, coarsest, patch_size, size, seed, noise)
    channels = image.shape[0]
    for l in range(len(shapes) - 1, -1, -1):
        values = extract_patches(levels[l], patch_size).contiguous()
        if l < len(shapes) - 1:
            x = resize(x, outs[l])
            first_keys = extract_patches(resize(levels[l + 1], shapes[l]), patch_size).contiguous()
        else:
            first_keys = values
        mode = search if search != "auto" else ("exact" if values.shape[0] <= 4096 else "approx")
        proposals = _Proposals(values) if mode == "approx" else None
        for it in range(iterations):
            keys = first_keys if it == 0 else values
            queries = extract_patches(x, patch_size)
            if mode == "exact":
                index = _dense_normalized(queries, keys, alpha)
            else:
                index = _approx_normalized(queries, keys, alpha, proposals if it else None)
            x = fold_patches(values[index], (channels, *outs[l]), patch_size, rho=float("inf"))
    return x.clamp(-1, 1)
