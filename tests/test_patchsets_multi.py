"""Patch sets over several images: the same rows, statistics and blocks as the concatenated patches."""
import pytest
import torch

from sidlite import extract_patches
from sidlite.patchsets import DensePatchSet, ImagePatchSet, SubsetPatchSet


def _images(seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    shapes = [(3, 9, 11), (3, 7, 7), (3, 12, 8)]          # different sizes, one channel count
    return [torch.randn(shape, generator=generator, dtype=dtype) for shape in shapes]


def _reference(images, patch_size, stride=1):
    return torch.cat([extract_patches(im, patch_size, stride) for im in images])


@pytest.mark.parametrize("patch_size,stride", [(3, 1), (5, 1), (3, 2), (7, 1)])
def test_rows_are_the_concatenated_patches_image_by_image(patch_size, stride):
    images = _images()
    reference = _reference(images, patch_size, stride)
    patch_set = ImagePatchSet(images, patch_size, stride)
    assert (patch_set.size, patch_set.dim) == tuple(reference.shape)
    assert torch.equal(patch_set.dense(), reference)
    rows = torch.randperm(reference.shape[0], generator=torch.Generator().manual_seed(1))[:40]
    assert torch.equal(patch_set.gather(rows), reference[rows])
    # rows at the seams between images, in both orders
    sizes = [extract_patches(im, patch_size, stride).shape[0] for im in images]
    seams = torch.tensor([sizes[0] - 1, sizes[0], sizes[0] + sizes[1] - 1, sizes[0] + sizes[1], 0,
                          reference.shape[0] - 1])
    assert torch.equal(patch_set.gather(seams), reference[seams])
    assert torch.equal(patch_set.gather(seams.flip(0)), reference[seams.flip(0)])


@pytest.mark.parametrize("patch_size,stride", [(3, 1), (4, 1), (3, 2)])
def test_mean_and_squared_norms_match_the_concatenated_patches(patch_size, stride):
    images = _images(2)
    reference = _reference(images, patch_size, stride)
    patch_set = ImagePatchSet(images, patch_size, stride)
    assert torch.allclose(patch_set.mean(), reference.mean(0), atol=1e-12)
    assert torch.allclose(patch_set.sq_norms().double(), (reference ** 2).sum(1), rtol=1e-6)
    dense = DensePatchSet(reference)
    assert torch.allclose(patch_set.mean(), dense.mean(), atol=1e-12)


@pytest.mark.parametrize("rows", [1, 7, 50, 10_000])
def test_chunks_cover_the_set_in_order(rows):
    images = _images(3)
    reference = _reference(images, 3)
    patch_set = ImagePatchSet(images, 3)
    expected_start = 0
    blocks = []
    for start, block in patch_set.chunks(rows):
        assert start == expected_start and 1 <= block.shape[0] <= rows
        assert torch.equal(block, reference[start:start + block.shape[0]])
        expected_start += block.shape[0]
        blocks.append(block)
    assert expected_start == reference.shape[0]
    assert torch.equal(torch.cat(blocks), reference)


def test_keep_masks_select_rows_across_images():
    images = _images(4)
    patch_size = 3
    grids = [(im.shape[1] - 2, im.shape[2] - 2) for im in images]
    generator = torch.Generator().manual_seed(5)
    keep = [torch.rand(grid, generator=generator) > 0.4 for grid in grids]
    reference = _reference(images, patch_size)[torch.cat([k.reshape(-1) for k in keep])]
    patch_set = ImagePatchSet(images, patch_size, keep=keep)
    assert torch.equal(patch_set.dense(), reference)
    assert torch.allclose(patch_set.mean(), reference.mean(0), atol=1e-12)
    assert torch.allclose(patch_set.sq_norms().double(), (reference ** 2).sum(1), rtol=1e-6)


def test_a_list_of_one_image_equals_the_image_and_a_batch_splits_into_images():
    image = _images(6)[0]
    single, listed = ImagePatchSet(image, 5), ImagePatchSet([image], 5)
    assert torch.equal(single.dense(), listed.dense()) and torch.equal(single.dense(), extract_patches(image, 5))
    batch = torch.stack([image, image.flip(-1)])
    assert torch.equal(ImagePatchSet(list(batch), 5).dense(), _reference(list(batch), 5))


def test_images_with_different_channel_counts_are_refused():
    with pytest.raises(Exception, match="channel"):
        ImagePatchSet([torch.zeros(3, 8, 8), torch.zeros(1, 8, 8)], 3)


def test_a_subset_reads_its_rows_through_the_set():
    g = torch.Generator().manual_seed(0)
    base = ImagePatchSet(torch.rand(3, 20, 24, generator=g), 5)
    rows = torch.randperm(base.size, generator=g)[:77]
    subset = SubsetPatchSet(base, rows)
    dense = base.dense()[rows]
    assert subset.size == 77 and subset.dim == base.dim
    assert torch.equal(subset.gather(torch.tensor([3, 0, 76])), dense[[3, 0, 76]])
    assert torch.equal(subset.dense(), dense)
    torch.testing.assert_close(subset.sq_norms(), (dense.double() ** 2).sum(1).float())
    torch.testing.assert_close(subset.mean(), dense.double().mean(0).float())
