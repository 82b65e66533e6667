"""Guided style: the guidance rule, the weight-free objectives, CLIP's augmentations and loader (with a tiny
randomly initialised CLIP saved to a temporary folder), the application and its CLI."""
import math

import pytest
import torch

import sidlite
from sidlite.cli import main
from sidlite.clip import (ClipObjective, augment_views, clip_available, colour_jitter, load_clip, random_affine,
                          random_perspective, view_size)
from sidlite.errors import SidliteError
from sidlite.guidance import (Guidance, PaletteObjective, PatchStatsObjective, guided_step, score_gradient,
                              soft_threshold)


@pytest.fixture
def tiny_image():
    return sidlite.example_image("chelsea", 40)  # 3 x 27 x 40


# ---- the guidance rule -------------------------------------------------------------------------------

def test_soft_threshold_keeps_the_top_fill_factor_and_shrinks_by_the_quantile():
    g = torch.randn(3, 10, 10, generator=sidlite.make_generator(0))
    shrunk, mask = soft_threshold(g, 0.3)
    energy = g.norm(dim=0)
    assert abs(mask.float().mean().item() - 0.3) <= 0.011
    q = energy[~mask[0]].max()
    expected = (energy - q).clamp_min(0) / energy * g
    assert torch.allclose(shrunk, expected, atol=1e-6)
    assert torch.all(shrunk[:, ~mask[0]] == 0)


def test_guided_step_is_self_normalized_and_clamped():
    gen = sidlite.make_generator(1)
    x = 0.3 * torch.randn(3, 12, 12, generator=gen).clamp(-2, 2) / 2
    g = torch.randn(3, 12, 12, generator=gen)
    shrunk, mask = soft_threshold(g, 0.5)
    gamma = 0.05
    out = guided_step(x, g, gamma, 0.5)
    assert out.abs().max() <= 1
    moved = (out - x)
    assert torch.all(moved[:, ~mask[0]] == 0)
    expected_norm = gamma * (x * mask).norm()
    if x.abs().max() + moved.abs().max() < 1:  # no clamping happened: the step has exactly that size
        assert math.isclose(moved.norm().item(), expected_norm.item(), rel_tol=1e-4)
    big = guided_step(x, g, 50.0, 0.5)
    assert big.abs().max() <= 1 and (big.abs() == 1).any()


def test_guidance_momentum_and_time_scaling():
    target = torch.zeros(3, 8, 8)
    calls = []

    def objective(x):
        calls.append(x.detach().clone())
        return -(x - target).pow(2).sum()

    guidance = Guidance(objective, strength=0.5, momentum=0.1, fill_factor=1.0)
    first = torch.full((3, 8, 8), 0.5)
    out1 = guidance.guide(first, sigma=0.3, sigma_start=0.3)
    assert torch.equal(calls[0], first)  # first step: x_m = x̂
    second = torch.full((3, 8, 8), -0.5)
    guidance.guide(second, sigma=0.0, sigma_start=0.3)
    assert torch.allclose(calls[1], 0.9 * out1 + 0.1 * second)  # later steps: (1 - λ)·x̂_prev + λ·x̂
    assert len(guidance.history) == 2
    guidance.reset()
    assert guidance.previous is None and guidance.history == []


def test_guidance_rejects_bad_settings():
    for kwargs in ({"strength": -1}, {"momentum": 2}, {"fill_factor": 0}, {"iters": 0}):
        with pytest.raises(SidliteError):
            Guidance(lambda x: x.sum(), **kwargs)
    with pytest.raises(SidliteError, match="scalar"):
        score_gradient(lambda x: x, torch.zeros(3, 4, 4))


# ---- weight-free objectives --------------------------------------------------------------------------

def test_palette_objective_is_highest_on_palette_colours():
    palette = sidlite.example_image("coffee", 48)
    objective = PaletteObjective(palette, colours=4)
    assert objective.colours.shape == (4, 3)
    on_palette = objective.colours[0].view(3, 1, 1).expand(3, 8, 8)
    assert objective(on_palette) > objective(torch.full((3, 8, 8), -1.0)) - 1e-9
    assert objective(on_palette) > -1e-3


def test_patch_stats_objective_is_zero_on_its_own_texture():
    texture = sidlite.example_image("gravel", 40)
    objective = PatchStatsObjective(texture)
    assert abs(float(objective(texture))) < 1e-8
    assert float(objective(sidlite.example_image("chelsea", 40))) < -1e-3


def test_palette_guidance_raises_the_score_and_is_seeded(tiny_image):
    objective = PaletteObjective(sidlite.example_image("hubble_deep_field", 48))
    plain = sidlite.stylize(tiny_image, objective, steps=12, patch_size=5, strength=0.0, progress=False)
    guided = sidlite.stylize(tiny_image, objective, steps=12, patch_size=5, progress=False)
    again = sidlite.stylize(tiny_image, objective, steps=12, patch_size=5, progress=False)
    assert guided.shape == tiny_image.shape and guided.abs().max() <= 1
    assert float(objective(guided)) > float(objective(plain)) + 0.02
    assert torch.equal(guided, again)
    # without guidance it is plain inversion + reconstruction with the image's own patches: near the input
    assert (plain - tiny_image).pow(2).mean().sqrt() < 0.1


def test_stylize_needs_exactly_one_target(tiny_image):
    with pytest.raises(SidliteError, match="exactly one"):
        sidlite.stylize(tiny_image)
    with pytest.raises(SidliteError, match="exactly one"):
        sidlite.stylize(tiny_image, lambda x: x.sum(), prompt="oil painting")
    with pytest.raises(SidliteError, match="noise_level"):
        sidlite.stylize(tiny_image, lambda x: x.sum(), noise_level=0)


# ---- augmentations -------------------------------------------------------------------------------------

def test_view_size_follows_short_side_and_long_side_cap():
    assert view_size(100, 150) == (213, 320)  # 336 > 320: the long side is capped
    assert view_size(300, 300) == (224, 224)
    assert view_size(200, 250) == (224, 280)


def test_warps_with_no_motion_are_the_identity(tiny_image):
    view = ((tiny_image + 1) / 2)[None]

    gen = sidlite.make_generator(0)
    assert torch.allclose(random_affine(view, gen, degrees=0, translate=0), view, atol=1e-5)
    assert torch.allclose(random_perspective(view, gen, distortion=0), view, atol=1e-5)
    assert torch.allclose(colour_jitter(view, gen, amount=0), view, atol=1e-5)


def test_affine_fill_is_white_outside_the_image():
    view = torch.zeros(1, 3, 20, 20)
    gen = sidlite.make_generator(3)
    out = random_affine(view, gen, degrees=15, translate=0.1, fill=1.0)
    assert out.max() > 0.99 and out.min() == 0  # corners filled white, the inside stays black


def test_augment_views_are_seeded_in_range_and_differentiable(tiny_image):
    image = ((tiny_image + 1) / 2).requires_grad_(True)
    views = augment_views(image, 6, sidlite.make_generator(0), size=32, max_size=48)
    again = augment_views(image, 6, sidlite.make_generator(0), size=32, max_size=48)
    other = augment_views(image, 6, sidlite.make_generator(1), size=32, max_size=48)
    assert views.shape == (6, 3, *view_size(27, 40, 32, 48))
    assert views.min() >= 0 and views.max() <= 1
    assert torch.equal(views, again) and not torch.equal(views, other)
    views.sum().backward()
    assert image.grad is not None and image.grad.abs().sum() > 0


# ---- CLIP (tiny, random, offline) ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny_clip(tmp_path_factory):
    """A randomly initialised CLIP with tiny towers and a character-level tokenizer, saved like a real one."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("tiny-clip")
    chars = [chr(c) for c in range(33, 127)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    tokenizer = transformers.CLIPTokenizer(vocab=vocab, merges=[])
    config = transformers.CLIPConfig(
        text_config=dict(vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=2, max_position_embeddings=64, bos_token_id=0, eos_token_id=1,
                         pad_token_id=1),
        vision_config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
                           image_size=32, patch_size=8),
        projection_dim=16)
    torch.manual_seed(0)
    transformers.CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_loader_reads_a_local_folder_frozen_in_float32(tiny_clip):
    model, tokenizer = load_clip(str(tiny_clip))
    assert not model.training and all(not p.requires_grad for p in model.parameters())
    assert next(model.parameters()).dtype == torch.float32
    assert tokenizer("a cat")["input_ids"][0] == 0


def test_clip_available_looks_at_folders_and_the_cache(tiny_clip, tmp_path, monkeypatch):
    assert clip_available(str(tiny_clip))
    assert not clip_available(str(tmp_path))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    assert not clip_available("openai/clip-vit-base-patch32")
    snapshot = tmp_path / "hub" / "models--openai--clip-vit-base-patch32" / "snapshots" / "abc"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text("{}")
    assert clip_available("openai/clip-vit-base-patch32")


def test_missing_model_is_a_clear_offline_error(tmp_path):
    with pytest.raises(SidliteError, match="sidlite-test/no-such-clip.*not available offline.*download"):
        load_clip("sidlite-test/no-such-clip")
    with pytest.raises(SidliteError, match="holds no CLIP model"):
        load_clip(str(tmp_path))
    with pytest.raises(SidliteError, match="no CLIP model folder"):
        load_clip(str(tmp_path / "missing"))


def test_clip_objective_gradient_ascent_raises_the_score(tiny_clip, tiny_image):
    model, tokenizer = load_clip(str(tiny_clip))
    objective = ClipObjective(model, tokenizer, "an oil painting", num_views=4, seed=0)
    assert objective.text.shape == (14, 16)

    x = tiny_image
    gains = []
    for seed in range(3):  # the same views and templates for the image before and after the step
        objective.generator.manual_seed(seed)
        grad, _ = score_gradient(objective, x)
        objective.generator.manual_seed(seed)
        before = float(objective(x))
        objective.generator.manual_seed(seed)
        after = float(objective(guided_step(x, grad, 0.02, 0.5)))
        gains.append(after - before)
    assert all(g > 0 for g in gains)


def test_stylize_with_a_prompt_through_the_real_loader(tiny_clip, tiny_image):
    result, guidance = sidlite.stylize(tiny_image, prompt="stained glass", clip_model=str(tiny_clip), num_views=2,
                                       steps=8, patch_size=5, progress=False, return_result=True)
    assert result.image.shape == tiny_image.shape and result.image.abs().max() <= 1
    assert len(guidance.history) == sidlite.Schedule.flow_linear(8).index_for_noise_level(0.3)  # one per step


# ---- CLI ----------------------------------------------------------------------------------------------

SMALL = ["--max-side", "32", "--patch-size", "5", "--steps", "8", "--quiet"]


def test_cli_palette_and_texture(tmp_path, capsys):
    out = tmp_path / "p.png"
    assert main(["stylize", "example:chelsea", "-o", str(out), "--palette", "example:coffee", *SMALL]) == 0
    assert sidlite.load_image(out).shape == (3, 21, 32)
    assert main(["stylize", "example:chelsea", "-o", str(out), "--palette", "example:coffee", *SMALL]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["stylize", "example:chelsea", "-o", str(tmp_path / "t.png"), "--texture", "example:gravel", *SMALL]) == 0


def test_cli_prompt_without_weights_is_one_line(tmp_path, capsys):
    code = main(["stylize", "example:chelsea", "-o", str(tmp_path / "c.png"), "--prompt", "van gogh",
                 "--clip", "sidlite-test/no-such-clip", *SMALL])
    err = capsys.readouterr().err
    assert code == 2 and "no-such-clip" in err and "Traceback" not in err and err.count("\n") == 1
    assert not (tmp_path / "c.png").exists()


def test_cli_prompt_with_a_local_clip_folder(tmp_path, tiny_clip):
    out = tmp_path / "c.png"
    assert main(["stylize", "example:chelsea", "-o", str(out), "--prompt", "mosaic tiles", "--clip", str(tiny_clip),
                 "--views", "2", *SMALL]) == 0
    assert out.exists()


def test_objectives_that_cannot_guide_are_refused():
    image = sidlite.example_image("chelsea", 32)
    for objective, message in ((lambda x: torch.tensor(1.0), "does not depend on the image"),
                               (lambda x: x.sum() * float("nan"), "must be finite"),
                               (lambda x: 3.0, "scalar tensor score")):
        with pytest.raises(SidliteError, match=message):
            sidlite.stylize(image, objective, steps=2, progress=False)
    with pytest.raises(SidliteError, match="the palette has 1 channels"):
        PaletteObjective(image[:1])(image)
