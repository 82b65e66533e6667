"""Coarse-to-fine generation: seeds, sizes, recording, hooks and bad settings."""
import platform
import sys
import warnings

import pytest
import torch

import sidlite
from sidlite import Hooks, SidliteError, SingleImageModel, generate, trajectory

FAST = dict(patch_size=5, steps=4, progress=False)


def test_same_seed_same_image_and_different_seeds_differ(small_image):
    a = generate(small_image, 2, seed=3, **FAST)
    b = generate(small_image, 1, seed=3, **FAST)
    c = generate(small_image, 1, seed=4, **FAST)
    assert a.shape == (2, 3, 40, 56)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], c[0]) and not torch.equal(a[0], a[1])


def test_output_size_can_differ_from_input(small_image):
    out = generate(small_image, size=(30, 90), **FAST)
    assert out.shape == (1, 3, 30, 90) and bool(torch.isfinite(out).all())


def test_backends_give_the_same_sample(small_image):
    a = generate(small_image, backend="exact", **FAST)
    b = generate(small_image, backend="attention", **FAST)
    assert (a - b).abs().max() < 1e-3


def test_samples_are_new_images_made_of_input_patches(small_image):
    out = generate(small_image, seed=1, **FAST)[0]
    assert sidlite.coherence(out, small_image, 5) < 0.01  # every patch looks like an input patch
    assert (out - small_image).abs().mean() > 0.05  # but the image is not the input


def test_trajectory_records_every_step(small_image):
    model = SingleImageModel(small_image, patch_size=5)
    result = model.sample(seed=0, steps=3, record=True, progress=False)
    assert len(result.trajectory) == 3 * model.num_levels
    first = result.trajectory[0]
    assert first.level == model.num_levels - 1 and first.t == 3 and first.alpha == 0.0
    assert torch.equal(result.levels[0], result.image)
    # t = 1 returns the raw (un-blended) estimate, which is the level's result
    last = result.trajectory[-1]
    assert last.t == 1 and torch.equal(last.x_hat, result.image)
    assert len(trajectory(small_image, patch_size=5, steps=2, progress=False).trajectory) == 2 * model.num_levels


def test_first_step_estimate_is_flat_dataset_mean(small_image):
    result = SingleImageModel(small_image, patch_size=5, num_levels=1).sample(steps=3, record=True, progress=False)
    centre = result.trajectory[0].x_hat[:, 5:-5, 5:-5]
    expected = small_image.mean((1, 2))  # the mean patch has each channel's mean almost everywhere
    assert (centre.mean((1, 2)) - expected).abs().max() < 0.02


def test_hooks_constrain_applies_every_step(small_image):
    class Clamp(Hooks):
        calls = 0

        def constrain(self, level, t, x_hat):
            Clamp.calls += 1
            return x_hat.clamp(-0.2, 0.2)

    model = SingleImageModel(small_image, patch_size=5, num_levels=2)
    out = model.sample(steps=3, hooks=Clamp(), progress=False).image
    assert Clamp.calls == 6 and float(out.abs().max()) <= 0.2 + 1e-6


def test_wrong_hooks_and_generators_are_refused_in_one_line(small_image):
    """Hooks without the sampler's methods, and a seed passed as the generator, get sidlite's error naming what
    to pass, not an AttributeError or torch's argument listing."""
    model = SingleImageModel(small_image, patch_size=5, num_levels=2)
    with pytest.raises(SidliteError, match="hooks must be a sidlite.sampler.Hooks"):
        model.sample(steps=2, hooks="mirror", progress=False)
    for wrong in (5, [torch.Generator(), 7]):
        with pytest.raises(SidliteError, match="pass seed= for a seed"):
            model.sample(steps=2, generator=wrong, progress=False)


def test_num_levels_and_patch_size_errors(small_image):
    with pytest.raises(SidliteError, match="smaller than the"):
        SingleImageModel(small_image, patch_size=15, num_levels=3)
    with pytest.raises(SidliteError, match="smaller than the 41x41 patch"):
        SingleImageModel(small_image, patch_size=41)
    with pytest.raises(SidliteError, match="steps"):
        generate(small_image, steps=0)
    with pytest.raises(SidliteError, match="eta"):
        generate(small_image, eta=-0.5)
    with pytest.raises(SidliteError, match="output size"):
        generate(small_image, size=(0, 10))
    with pytest.raises(SidliteError, match="unknown device"):
        generate(small_image, device="tpu")
    with pytest.raises(SidliteError, match="unknown backend"):
        generate(small_image, backend="magic")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_a_clear_error(small_image):
    with pytest.raises(SidliteError, match="no usable CUDA"):
        generate(small_image, device="cuda", **FAST)



@pytest.mark.parametrize("device,message", [("cpu:7", "one CPU device"), ("cuda:x", "unknown device"),
                                            ("cpu:", "unknown device"), ("cuda:\u00b2", "unknown device"),
                                            ("cuda:1", r"has 1 CUDA GPU \(cuda:0\); got 'cuda:1'")])
def test_device_indexes_that_do_not_exist_are_refused(device, message, monkeypatch):
    from sidlite.runtime import resolve_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # a machine with one GPU
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("cpu:0") == torch.device("cpu")
    assert resolve_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(SidliteError, match=message):
        resolve_device(device)


def test_auto_weighs_the_queries_of_each_level():
    # a 40x40 image (1156 patches of 7x7) generating 200x200 (37636 queries): exact work 43M pairs
    model = sidlite.SingleImageModel(torch.rand(3, 40, 40) * 2 - 1, patch_size=7, num_levels=2,
                                     output_size=(200, 200))
    assert [d.backend.name for d in model.denoisers] == ["topk", "attention"]
    same_size = sidlite.SingleImageModel(torch.rand(3, 40, 40) * 2 - 1, patch_size=7, num_levels=2)
    assert [d.backend.name for d in same_size.denoisers] == ["attention", "attention"]


def test_freed_memory_is_kept_for_reuse_on_glibc_unless_asked_not_to(monkeypatch):
    from sidlite.runtime import reuse_freed_memory

    applied = reuse_freed_memory()
    assert applied == (sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc")
    assert reuse_freed_memory(300 * 2 ** 20) == applied  # a budget keeps a share of itself
    monkeypatch.setenv("SIDLITE_KEEP_MALLOC", "1")
    assert reuse_freed_memory() is False


def test_each_level_gives_back_what_the_heap_kept_of_it(small_image, monkeypatch):
    import sidlite.sampler

    released = []
    monkeypatch.setattr(sidlite.sampler, "release_freed_memory", lambda: released.append(1))
    model = SingleImageModel(small_image, patch_size=5, num_levels=3)
    model.sample(0, steps=2, progress=False)
    assert len(released) == 3


@pytest.mark.parametrize("backend,eta", [("exact", 0.0), ("topk:nlist=16", 1.0)])
def test_a_batch_of_seeds_gives_the_images_of_the_seeds(small_image, backend, eta):
    """B samples through each step together equal the B single runs: every step to float rounding; at
    the last step (σ_min = 1e-4, a nearest-patch pick) only near-ties may flip, at a few pixels."""
    model = SingleImageModel(small_image, patch_size=5, backend=backend)
    alone = [model.sample(seed, steps=4, eta=eta, record=True, progress=False) for seed in (7, 8, 9)]
    batch = model.sample(7, steps=4, eta=eta, record=True, progress=False, batch=3)
    assert batch.image.shape == (3, *alone[0].image.shape)
    for i, single in enumerate(alone):
        for step, together in zip(single.trajectory, batch.trajectory):
            assert torch.allclose(step.x_t, together.x_t[i], atol=1e-5)
            if step.sigma > 1e-3:
                assert torch.allclose(step.x_hat, together.x_hat[i], atol=1e-5)
        differs = (single.image - batch.image[i]).abs() > 1e-4
        assert differs.float().mean() < 0.01
    assert not torch.allclose(batch.image[0], batch.image[1], atol=0.1)  # each row has its own noise


def test_generate_in_batches_matches_one_at_a_time(small_image):
    one = generate(small_image, 3, seed=5, **FAST)
    batched = generate(small_image, 3, seed=5, batch_size=2, **FAST)  # a batch of 2, then 1
    assert ((one - batched).abs() > 1e-4).float().mean() < 0.01


def test_noise_for_a_batch_is_each_generators_own_draw():
    from sidlite.runtime import make_generator, normal_noise
    batch = normal_noise((3, 2, 4), [make_generator(s) for s in (1, 2, 3)])
    for row, seed in zip(batch, (1, 2, 3)):
        assert torch.equal(row, normal_noise((2, 4), make_generator(seed)))
    with pytest.raises(SidliteError, match="B=3"):
        normal_noise((2, 2, 4), [make_generator(s) for s in (1, 2, 3)])


def test_a_batch_is_planned_and_refused_when_it_cannot_fit(small_image):
    model = SingleImageModel(small_image, patch_size=5, memory_budget="40MB")
    one, four = model.plan_batch(1), model.plan_batch(4)
    assert four.levels[0].image_bytes > 3 * one.levels[0].image_bytes
    for a, b in zip(one.levels, four.levels):  # four samples a step: four times the work
        assert b.flops_per_step == pytest.approx(4 * a.flops_per_step)
    with pytest.raises(SidliteError, match="memory budget") as error:
        model.sample(1, batch=4000, progress=False)
    assert "\n" not in str(error.value)
    with pytest.raises(SidliteError, match="batch"):
        model.sample(1, batch=0)


def test_a_budget_above_the_free_memory_is_noted(small_image, monkeypatch):
    import sidlite.plan

    model = SingleImageModel(small_image, patch_size=5, memory_budget="1TB")
    monkeypatch.setattr(sidlite.plan, "available_memory", lambda device: model.plan.peak // 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.plan.check()  # planning alone never warns
    with pytest.warns(UserWarning, match="not the .* free on this CPU now"):
        model.sample(0, steps=1, progress=False)
    monkeypatch.setattr(sidlite.plan, "available_memory", lambda device: model.plan.peak * 2)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model.sample(0, steps=1, progress=False)  # room enough: no note


def test_sampling_settings_given_to_the_model_are_refused_not_taken_as_backend_options(small_image):
    for key in ("seed", "steps", "progress"):
        with pytest.raises(SidliteError, match=f"{key} is a sampling setting: give it to sample"):
            SingleImageModel(small_image, 5, **{key: 3})
    model = SingleImageModel(small_image, 5, backend="topk:seed=3")  # k-means' own seed, where it belongs
    assert model.plan.levels[0].options["seed"] == 3
    with pytest.raises(SidliteError, match="a seed or a generator, not both"):
        model.sample(seed=1, generator=torch.Generator().manual_seed(5))
