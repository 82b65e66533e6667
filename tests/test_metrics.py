"""Metrics on cases with known answers."""
import pytest
import torch

import sidlite
from sidlite import SidliteError, coherence, completeness, copy_fraction, flat_fraction, patch_swd, pixel_diversity
from sidlite.metrics import flat_squares, nearest_patches


@pytest.fixture
def image(small_image):
    return small_image


def test_swd_zero_for_identical_and_grows_with_difference(image):
    assert patch_swd(image, image) == pytest.approx(0.0, abs=1e-9)
    noise = torch.randn(image.shape, generator=torch.Generator().manual_seed(0))
    slightly = patch_swd((image + 0.05 * noise).clamp(-1, 1), image)
    very = patch_swd(noise.clamp(-1, 1), image)
    assert 0 < slightly < very


def test_swd_invariant_to_patch_rearrangement(image):
    """A sample made of the input's halves swapped has almost the same patch distribution."""
    swapped = torch.cat([image[:, :, 28:], image[:, :, :28]], dim=2)
    assert patch_swd(swapped, image, num_levels=1) < 0.1 * patch_swd(torch.zeros_like(image), image, num_levels=1)


def test_pixel_diversity_known_values(image):
    same = torch.stack([image, image, image])
    assert pixel_diversity(same, image) == 0
    pair = torch.stack([image, -image])  # per-pixel std = |x|
    assert pixel_diversity(pair, image) == pytest.approx(float(image.abs().mean() / image.std(unbiased=False)), rel=1e-6)


def test_coherence_and_completeness(image):
    crop = image[:, :, :30]
    assert coherence(image, image) == pytest.approx(0, abs=1e-9)
    assert coherence(crop, image) == pytest.approx(0, abs=1e-9)  # every crop patch is in the input
    assert completeness(crop, image) > 0.001  # but the right part of the input is missing


def test_nearest_patches_indices():
    data = torch.eye(4)
    dist, index = nearest_patches(torch.eye(4)[[2, 0]] * 0.9, data)
    assert index.tolist() == [2, 0] and torch.allclose(dist, torch.full((2,), 0.01 / 4))


def test_copy_fraction_known_values(image):
    assert copy_fraction(image, image) == 1.0
    g = torch.Generator().manual_seed(0)
    noise = torch.rand(image.shape, generator=g) * 2 - 1
    assert copy_fraction(noise, image) == 0.0
    half = noise.clone()
    half[:, :, :28] = image[:, :, 10:38]  # the left half is a verbatim crop, shifted
    assert copy_fraction(half, image) == pytest.approx(0.5, abs=0.03)


def test_flat_fraction_counts_the_washed_out_squares():
    texture = sidlite.example_image("gravel", 128)
    assert flat_fraction(texture, texture, window=16) < 0.1
    smoothed = sidlite.resize(sidlite.resize(texture, (16, 16)), (128, 128))  # the texture's local mean only
    assert flat_fraction(smoothed, texture, window=16) > 0.9
    half = texture.clone()
    half[:, :, :64] = smoothed[:, :, :64]  # the left half washed out: 32 of the 64 squares
    assert flat_fraction(half, texture, window=16) == pytest.approx(0.5, abs=0.1)
    squares = flat_squares(half, texture, window=16)  # (8, 8), the washed-out ones on the left
    assert squares.shape == (8, 8) and squares[:, :4].float().mean() > 0.9 and squares[:, 4:].float().mean() < 0.1
    with pytest.raises(SidliteError, match="lower window"):
        flat_fraction(texture[:, :8, :8], texture, window=16)
