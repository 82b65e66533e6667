"""Baselines that the evaluation puts beside sidlite: GPNN, GPDM and a copy of the input.

Each is short, weight-free and tested for its defining property:

- :func:`gpnn`: multi-scale nearest-patch voting with GPNN's query normalisation α (Granot et al. 2022),
  the σ → 0, k = 1 limit of the closed-form denoiser plus a completeness term.
- :func:`gpdm`: multi-scale descent on the pixels of the patch sliced-Wasserstein distance to the input
  (Elnekave and Weiss 2022).
- :func:`copy_baseline`: the input shifted by a few pixels (mirror-filled): the sample a metric that
  rewards copying cannot tell from a good one.
"""
from .copy import copy_baseline
from .gpdm import gpdm, patch_swd_loss
from .gpnn import gpnn, normalized_nearest

__all__ = ["copy_baseline", "gpdm", "gpnn", "normalized_nearest", "patch_swd_loss"]
