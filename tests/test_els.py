"""The equivariant local score machine and the global optimal denoiser over a set of images (chapter 13).

The two links the chapter derives: with one image and a narrow window the machine is chapter 02's image
denoiser and single-scale sampler; with patches as large as the image it is chapter 01's memorising
denoiser. Plus the definition itself (the centre pixel of a patch posterior mean over every patch of
every training image), equivariance, the batch and strip plumbing, and the small network.
"""
import math

import numpy as np
import pytest
import torch

from sidlite import ImageDenoiser, Schedule, make_generator, naive_denoise, sample_pyramid
from sidlite.els import (ConvDenoiser, GlobalDenoiser, LocalPatchDenoiser, NetworkDenoiser, nearest_distances,
                         nearest_distances_up_to_shift, pad_image, r_squared, sample_images, torch_threads,
                         train_conv_denoiser)


def _training(count=6, shape=(1, 8, 8), seed=0, dtype=torch.float64):
    generator = torch.Generator().manual_seed(seed)
    images = torch.rand((count, *shape), generator=generator, dtype=dtype) * 2 - 1
    return images


def els_from_definition(x_t, images, patch_size, alpha, sigma, pad):
    """Kamb and Ganguli's ELS read-out, pixel by pixel: the centre of the posterior mean over all patches."""
    m = patch_size // 2
    data = torch.cat([torch.stack([pad_image(im, m, pad)[:, r:r + patch_size, c:c + patch_size].reshape(-1)
                                   for r in range(im.shape[1]) for c in range(im.shape[2])]) for im in images])
    padded = pad_image(x_t, m, pad, scale=alpha)
    out = torch.empty_like(x_t)
    centre = data.view(data.shape[0], x_t.shape[0], patch_size, patch_size)[:, :, m, m]
    for r in range(x_t.shape[1]):
        for c in range(x_t.shape[2]):
            query = padded[:, r:r + patch_size, c:c + patch_size].reshape(1, -1)
            logits = -((query - alpha * data) ** 2).sum(1) / (2 * sigma ** 2)
            out[:, r, c] = torch.softmax(logits, 0) @ centre
    return out


@pytest.mark.parametrize("pad", ["circular", -1.0, 0.5])
def test_narrow_window_gives_the_centre_pixel_readout_of_the_definition(pad):
    images = _training(5, (2, 7, 6))
    x_t = torch.randn(2, 7, 6, generator=make_generator(1), dtype=torch.float64)
    for alpha, sigma in [(0.8, 0.3), (0.3, 0.9)]:
        machine = LocalPatchDenoiser(images, 3, rho=0.02, pad=pad, backend="naive")
        expected = els_from_definition(x_t, images, 3, alpha, sigma, pad)
        assert torch.allclose(machine(x_t, alpha, sigma), expected, atol=1e-10)


def test_with_one_image_and_no_padding_the_machine_is_chapter_02s_image_denoiser():
    image = _training(1, (3, 10, 9))[0]
    x_t = torch.randn(image.shape, generator=make_generator(2), dtype=torch.float64)
    for rho in [0.05, 0.2, math.inf]:
        machine = LocalPatchDenoiser([image], 5, rho=rho, backend="exact")
        chapter02 = ImageDenoiser(image, 5, backend="exact", rho=rho)
        assert torch.allclose(machine(x_t, 0.6, 0.4), chapter02(x_t, 0.6, 0.4), atol=1e-12)
    # and interior pixels, with rho -> 0, are the definition's centre read-out over the valid patches
    narrow = LocalPatchDenoiser([image], 5, rho=0.02, backend="exact")(x_t, 0.6, 0.4)
    valid = torch.stack([image[:, r:r + 5, c:c + 5].reshape(-1) for r in range(6) for c in range(5)])
    for r, c in [(2, 2), (4, 3), (7, 6)]:
        query = x_t[:, r - 2:r + 3, c - 2:c + 3].reshape(1, -1)
        weights = torch.softmax(-((query - 0.6 * valid) ** 2).sum(1) / (2 * 0.4 ** 2), 0)
        assert torch.allclose(narrow[:, r, c], weights @ valid.view(-1, 3, 5, 5)[:, :, 2, 2], atol=1e-10)


@pytest.mark.parametrize("rho,dtype,atol", [(0.05, torch.float64, 1e-10), (0.2, torch.float32, 1e-5)])
def test_with_one_image_the_machine_samples_like_chapter_02s_single_scale_sampler(rho, dtype, atol):
    image = _training(1, (3, 12, 10), seed=3, dtype=dtype)[0]
    steps, backend = 6, ("exact" if dtype == torch.float64 else "attention")
    # chapter 02's loop, written out
    denoiser, schedule = ImageDenoiser(image, 5, backend=backend, rho=rho), Schedule.flow_linear(steps)
    generator = make_generator(0)
    x = schedule.sigmas[-1] * torch.randn(image.shape, generator=generator, dtype=dtype)
    for t in range(steps, 0, -1):
        x_hat = denoiser(x, schedule.alphas[t], schedule.sigmas[t])
        x = schedule.step(x_hat, schedule.predict_noise(x, x_hat, t), t - 1)
    machine = LocalPatchDenoiser([image], 5, rho=rho, backend=backend)
    ours = sample_pyramid([machine], [(12, 10)], [schedule], generator=make_generator(0), progress=False,
                          dtype=dtype).image
    assert torch.allclose(ours, x, atol=atol)
    strip = sample_images(machine, (12, 10), 1, steps=steps, seed=0, dtype=dtype)[0]
    assert torch.allclose(strip, x, atol=atol), "a strip of one sample is the same sampler"


def test_patches_as_large_as_the_image_are_chapter_01s_memorising_denoiser():
    images = _training(7, (2, 6, 6), seed=4)
    x_t = torch.randn(3, 2, 6, 6, generator=make_generator(5), dtype=torch.float64)
    flat = images.reshape(7, -1).numpy()
    for alpha, sigma in [(0.9, 0.1), (0.5, 0.5), (0.1, 0.95)]:
        chapter01 = torch.from_numpy(naive_denoise(x_t.reshape(3, -1).numpy(), flat, alpha, sigma)).view(x_t.shape)
        glob = GlobalDenoiser(images, backend="naive")(x_t, alpha, sigma)
        local = LocalPatchDenoiser(images, 6, rho=0.2, backend="naive")(x_t, alpha, sigma)
        assert torch.allclose(glob, chapter01, atol=1e-12)
        assert torch.allclose(local, chapter01, atol=1e-10)
    samples = sample_images(GlobalDenoiser(images.float()), (6, 6), 8, steps=20, seed=1)
    distance, index = nearest_distances(samples, images.float())
    assert distance.max() < 1e-4, "sampling the global optimal denoiser lands on training images"
    assert torch.allclose(samples, images.float()[index], atol=1e-4)


def test_circular_machine_commutes_with_circular_shifts_and_batches_like_single_calls():
    images = _training(4, (1, 8, 8), seed=6)
    machine = LocalPatchDenoiser(images, 3, rho=0.3, pad="circular", backend="exact")
    x_t = torch.randn(3, 1, 8, 8, generator=make_generator(7), dtype=torch.float64)
    batch = machine(x_t, 0.5, 0.6)
    for k in range(3):
        assert torch.allclose(batch[k], machine(x_t[k], 0.5, 0.6), atol=1e-12)
        shifted = machine(x_t[k].roll((2, -3), (1, 2)), 0.5, 0.6)
        assert torch.allclose(shifted, batch[k].roll((2, -3), (1, 2)), atol=1e-12)
    global_batch = GlobalDenoiser(images, backend="exact")(x_t, 0.5, 0.6)
    assert torch.allclose(global_batch[1], GlobalDenoiser(images, backend="exact")(x_t[1], 0.5, 0.6))


def test_distance_up_to_shift_sees_a_moved_copy_and_is_the_least_over_shifts():
    images = _training(5, (2, 6, 7), seed=11)
    moved = images[3].roll((2, -3), (1, 2))
    other = images[0] + 0.3 * torch.randn(2, 6, 7, generator=make_generator(12), dtype=torch.float64)
    samples = torch.stack([moved, other])
    plain = nearest_distances(samples, images)[0]
    shifted = nearest_distances_up_to_shift(samples, images)
    assert plain[0] > 0.5 and shifted[0] < 1e-12, "a moved training image is a copy up to a shift"
    brute = min(((other.roll((a, b), (1, 2)) - y) ** 2).mean().sqrt() for a in range(6) for b in range(7)
                for y in images)
    assert torch.isclose(shifted[1], brute.to(shifted.dtype), atol=1e-9)


@pytest.mark.parametrize("pad", [None, "circular", -1.0])
def test_a_training_image_at_tiny_noise_is_returned_by_every_boundary_rule(pad):
    images = _training(3, (1, 9, 9), seed=8)
    machine = LocalPatchDenoiser(images, 5, pad=pad, backend="exact")
    assert torch.allclose(machine(images[1], 1.0, 1e-3), images[1], atol=1e-8)


def test_samples_of_the_local_machine_are_new_images_and_same_seeds_share_noise():
    images = _training(4, (1, 8, 8), seed=9).float()
    machine = LocalPatchDenoiser(images, 3, pad="circular")
    first = sample_images(machine, (8, 8), 6, steps=10, seed=2)
    again = sample_images(machine, (8, 8), 6, steps=10, seed=2)
    assert torch.equal(first, again)
    distance, _ = nearest_distances(first, images)
    assert distance.min() > 0.05, "random-pixel training images: a patch mosaic is never a whole copy"
    assert r_squared(first, first).min() == 1.0 and r_squared(first, again.flip(0)).max() < 1.0


def test_conv_denoiser_is_local_equivariant_and_learns():
    # tiny convolutions: one thread avoids synchronisation stalls on a busy CPU; the networks' initial
    # weights come from a seeded global generator, not from whatever earlier tests left in it
    with torch_threads(1), torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        net = ConvDenoiser(1, width=16, layers=2, kernel=3).double()
        assert net.receptive_field == 5
        x = torch.randn(1, 1, 12, 12, generator=make_generator(0), dtype=torch.float64)
        sigma = torch.tensor([0.5], dtype=torch.float64)
        changed = x.clone()
        changed[0, 0, 9, 9] += 5.0                      # 3 pixels away from (6, 6) in each axis: outside radius 2
        assert torch.equal(net(x, sigma)[0, 0, 6, 6], net(changed, sigma)[0, 0, 6, 6])
        assert not torch.equal(net(x, sigma)[0, 0, 8, 8], net(changed, sigma)[0, 0, 8, 8])
        assert torch.allclose(net(x.roll(3, 3), sigma), net(x, sigma).roll(3, 3), atol=1e-12)
        images = _training(64, (1, 8, 8), seed=10).float()
        trained, losses = train_conv_denoiser(images, Schedule.flow_linear(10), ConvDenoiser(1, 8, 2),
                                              iterations=60, batch_size=16, lr=1e-2)
        assert len(losses) == 60 and np.mean(losses[-10:]) < 0.8 * np.mean(losses[:10])
        sample = sample_images(NetworkDenoiser(trained), (8, 8), 2, steps=5, seed=0)
        assert sample.shape == (2, 1, 8, 8) and torch.isfinite(sample).all()


def test_bad_arguments_are_refused():
    images = _training(2, (1, 8, 8))
    with pytest.raises(Exception, match="odd"):
        LocalPatchDenoiser(images, 4, pad="circular")
    with pytest.raises(Exception, match="pad"):
        LocalPatchDenoiser(images, 3, pad="mirror")
    with pytest.raises(Exception, match="one shape"):
        GlobalDenoiser([images[0], torch.zeros(1, 6, 6, dtype=images.dtype)])
