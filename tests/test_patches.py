"""Extraction and fold: layout, adjointness, windows, strides."""
import math

import pytest
import torch

from sidlite import SidliteError, extract_patches, fold_patches, gaussian_window
from sidlite.patches import patch_grid


def test_layout_is_channel_major_row_major():
    image = torch.arange(2 * 4 * 5, dtype=torch.float32).reshape(2, 4, 5)
    patches = extract_patches(image, 3)
    assert patches.shape == (2 * 3, 2 * 9)
    torch.testing.assert_close(patches[0], image[:, 0:3, 0:3].reshape(-1))
    torch.testing.assert_close(patches[4], image[:, 1:4, 1:4].reshape(-1))  # row 1, column 1 of a 2×3 grid


def test_fold_of_extract_is_identity_for_any_window():
    image = torch.randn(3, 17, 23)
    for rho in (0.2, 1.0, math.inf):
        torch.testing.assert_close(fold_patches(extract_patches(image, 5), image.shape, 5, rho=rho), image)


def test_fold_is_weighted_adjoint_of_extract():
    """⟨extract(x), p⟩ equals ⟨x, overlap-add(p)⟩: the un-normalised fold is the adjoint."""
    x, p = torch.randn(2, 9, 11, dtype=torch.float64), None
    patches = extract_patches(x, 4)
    p = torch.randn_like(patches)
    overlap_add = torch.nn.functional.fold(p.T.unsqueeze(0), (9, 11), 4)[0]
    assert torch.allclose((patches * p).sum(), (x * overlap_add).sum())


def test_window_values_and_uniform_limit():
    w = gaussian_window(15, 0.2)
    assert w[7, 7] == 1 and abs(float(w[7, 8]) - 0.775) < 1e-3 and abs(float(w[7, 9]) - 0.360) < 1e-3
    assert torch.equal(gaussian_window(5, math.inf), torch.ones(5, 5))


def test_stride_leaves_uncovered_pixels_zero():
    image = torch.ones(1, 8, 8)
    out = fold_patches(extract_patches(image, 3, stride=2), image.shape, 3, stride=2)
    assert patch_grid(8, 8, 3, 2) == (3, 3)
    assert torch.all(out[:, :7, :7] == 1) and torch.all(out[:, 7, :] == 0) and torch.all(out[:, :, 7] == 0)


def test_image_smaller_than_patch_is_a_clear_error():
    with pytest.raises(SidliteError, match="zero 7x7 patches"):
        extract_patches(torch.zeros(3, 5, 20), 7)
    with pytest.raises(SidliteError):
        gaussian_window(5, 0.0)


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_fold_add_equals_col2im(stride):
    """The CPU fold (P² strided slice additions from the row-wise layout) is F.fold's overlap-add."""
    import torch.nn.functional as F

    from sidlite.patches import fold_add, windowed_rows

    generator = torch.Generator().manual_seed(stride)
    count, channels, height, width, p = 2, 3, 17, 22, 5
    rows, cols = patch_grid(height, width, p, stride)
    estimates = torch.randn(count * rows * cols, channels * p * p, generator=generator)
    window = torch.rand(channels * p * p, generator=generator)
    start = torch.randn(count, channels, height, width, generator=generator)
    folded = fold_add(start.clone(), windowed_rows(estimates, window, rows, cols), p, stride)
    columns = (estimates * window).view(count, rows * cols, -1).transpose(1, 2)
    assert torch.allclose(folded, start + F.fold(columns, (height, width), p, stride=stride), atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_fold_add_equals_the_cpu_one():
    from sidlite.patches import fold_add, windowed_rows

    generator = torch.Generator().manual_seed(0)
    rows, cols = patch_grid(30, 26, 7, 2)
    estimates, window = torch.randn(rows * cols, 3 * 49, generator=generator), torch.rand(3 * 49, generator=generator)
    on_cpu = fold_add(torch.zeros(1, 3, 30, 26), windowed_rows(estimates, window, rows, cols), 7, 2)
    on_gpu = fold_add(torch.zeros(1, 3, 30, 26, device="cuda"),
                      windowed_rows(estimates.cuda(), window.cuda(), rows, cols), 7, 2)
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-4)
