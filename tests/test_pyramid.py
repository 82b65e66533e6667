"""Pyramid geometry, the cubic resampler and the Laplacian blend."""
import pytest
import torch

from sidlite import SidliteError, build_pyramid, laplacian_blend, pyramid_shapes, resize
from sidlite.pyramid import auto_num_levels


def test_shapes_are_ceil_halvings_finest_first():
    assert pyramid_shapes((186, 248), 4) == [(186, 248), (93, 124), (47, 62), (24, 31)]


def test_min_short_side_floor_keeps_aspect_and_clamps():
    shapes = pyramid_shapes((256, 384), 5, min_short_side=24)
    assert shapes[:4] == [(256, 384), (128, 192), (64, 96), (32, 48)] and shapes[4] == (24, 36)
    with pytest.raises(SidliteError, match="num_levels <="):
        pyramid_shapes((64, 64), 5, min_short_side=24)


def test_auto_depth_lands_on_min_short_side():
    assert auto_num_levels(256, 24) == 5 and auto_num_levels(186, 24) == 4 and auto_num_levels(24, 24) == 1
    with pytest.raises(SidliteError):
        auto_num_levels(20, 24)


def test_resize_preserves_constants_and_linear_ramps():
    const = torch.full((3, 20, 30), 0.3)
    torch.testing.assert_close(resize(const, (7, 11)), torch.full((3, 7, 11), 0.3))
    ramp = torch.linspace(-1, 1, 64).expand(1, 8, 64)
    up = resize(ramp, (8, 128))
    interior = up[0, 0, 8:-8]
    assert torch.allclose(interior[1:] - interior[:-1], (interior[1] - interior[0]).expand(interior.numel() - 1), atol=1e-5)


def test_resize_antialiases_when_shrinking():
    checker = (torch.arange(64)[:, None] + torch.arange(64)[None, :]) % 2 * 2.0 - 1
    small = resize(checker[None].float(), (16, 16))
    assert float(small.abs().max()) < 0.05  # the Nyquist pattern is filtered, not aliased


def test_resize_mirror_boundary_and_identity():
    image = torch.randn(2, 9, 13)
    assert torch.equal(resize(image, (9, 13)), image)
    flipped = resize(image.flip(-1), (5, 7)).flip(-1)
    torch.testing.assert_close(flipped, resize(image, (5, 7)), atol=1e-5, rtol=0)


def test_build_pyramid_shapes():
    levels = build_pyramid(torch.randn(3, 40, 60), pyramid_shapes((40, 60), 3))
    assert [tuple(l.shape[1:]) for l in levels] == [(40, 60), (20, 30), (10, 15)]


def test_laplacian_blend_takes_low_band_from_coarse_and_detail_from_fine():
    fine, coarse = torch.randn(3, 32, 48), torch.randn(3, 16, 24)
    out = laplacian_blend(fine, coarse)
    torch.testing.assert_close(laplacian_blend(fine, resize(fine, (16, 24))), fine, atol=1e-5, rtol=0)
    detail = fine - resize(resize(fine, (16, 24)), (32, 48))
    torch.testing.assert_close(out - detail, resize(coarse, (32, 48)))


@pytest.mark.parametrize("shape, size", [((16, 64, 48), (48, 36)), ((3, 40, 50), (80, 100)), ((2, 3, 9, 7), (4, 5))])
def test_dense_and_gathered_resize_agree(monkeypatch, shape, size):
    """Short axes go through one matrix product, long ones gather their taps: the same resize either way."""
    import sidlite.pyramid as pyramid

    image = torch.randn(shape, generator=torch.Generator().manual_seed(0))
    dense = resize(image, size)
    monkeypatch.setattr(pyramid, "DENSE_RESIZE_ENTRIES", 0)  # every axis gathered
    gathered = resize(image, size)
    assert dense.shape == gathered.shape == (*shape[:-2], *size)
    assert torch.allclose(dense, gathered, atol=1e-6)
