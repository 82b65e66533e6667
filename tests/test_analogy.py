"""Structural analogy: inversion, the transfer claims (layout from the structure, patches from the style),
the noise-level knob, errors and the CLI."""
import pytest
import torch

import sidlite
from sidlite.cli import main
from sidlite.errors import SidliteError
from sidlite.pyramid import resize

FAST = dict(patch_size=5, steps=(3, 3, 15), progress=False)


def low_band_correlation(a: torch.Tensor, b: torch.Tensor, size=(8, 8)) -> float:
    """Correlation of the grey levels of two images shrunk to ``size`` (their layouts)."""
    a = resize(a.mean(0, keepdim=True), size).flatten()
    b = resize(b.mean(0, keepdim=True), size).flatten()
    a, b = a - a.mean(), b - b.mean()
    return float(a @ b / (a.norm() * b.norm()))


@pytest.fixture(scope="module")
def pair():
    return sidlite.example_image("coffee", 64), sidlite.example_image("astronaut", 64)


@pytest.fixture(scope="module")
def analogy(pair):
    structure, style = pair
    return sidlite.structural_analogy(structure, style, noise_level=0.3, return_result=True, **FAST)


def test_inversion_then_own_reconstruction_returns_the_image():
    image = sidlite.example_image("chelsea", 32)
    den = sidlite.ImageDenoiser(image, 5)
    schedule = sidlite.Schedule.flow_linear(30, 1e-2)
    stop = schedule.index_for_noise_level(0.5)
    x = sidlite.invert(den, image, schedule, stop, sidlite.make_generator(0))
    assert (x - image).pow(2).mean().sqrt() > 0.1  # it did move away
    for t in range(stop, 0, -1):
        x_hat = den(x, schedule.alphas[t], schedule.sigmas[t])
        x = schedule.step(x_hat, schedule.predict_noise(x, x_hat, t), t - 1)
    exact = (x - image).abs().amax(0) < 1e-3
    assert exact.float().mean() > 0.75  # most pixels come back exactly (the rest snap to a neighbour's patch)


def test_inversion_warm_up_only_at_stop_one():
    image = sidlite.example_image("dots", 24)
    schedule = sidlite.Schedule.flow_linear(10, 1e-2)
    x = sidlite.invert(sidlite.ImageDenoiser(image, 5), image, schedule, 1, sidlite.make_generator(4))
    z = torch.randn(image.shape, generator=sidlite.make_generator(4))
    assert torch.allclose(x, schedule.alphas[1] * image + schedule.sigmas[1] * z)


def test_output_has_the_structure_layout_and_the_style_patches(pair, analogy):
    structure, style = pair
    out = analogy.image
    # the grid: structure aspect ratio at the style's short side (64)
    assert out.shape == (3, 64, round(64 * 64 / 43)) and len(analogy.levels) == 3
    structure_corr, style_corr = low_band_correlation(out, structure), low_band_correlation(out, style)
    assert structure_corr > 0.6 and structure_corr > style_corr + 0.3
    to_style, to_structure = sidlite.coherence(out, style, 5), sidlite.coherence(out, structure, 5)
    assert to_style < 0.6 * to_structure


def test_noise_level_knob_moves_away_from_the_structure(pair):
    structure, style = pair
    target = resize(structure, (64, 95))
    errors = [float((sidlite.structural_analogy(structure, style, noise_level=level, **FAST) - target).pow(2).mean())
              for level in (0.1, 1.0)]
    assert errors[0] < errors[1]


def test_same_seed_same_image_and_short_side_option(pair, analogy):
    structure, style = pair
    again = sidlite.structural_analogy(structure, style, noise_level=0.3, **FAST)
    assert torch.equal(again, analogy.image)
    small = sidlite.structural_analogy(structure, style, noise_level=0.3, output_short_side=40, **FAST)
    assert small.shape == (3, 40, 60)


@pytest.mark.parametrize("kwargs,message", [
    ({"patch_size": 21}, "smaller than the"),
    ({"noise_level": 0.0}, "noise_level"),
    ({"steps": (5, 5)}, "one per level"),
    ({"eta": 2.0}, "eta"),
])
def test_bad_settings_raise(pair, kwargs, message):
    options = {**FAST, **kwargs}
    with pytest.raises(SidliteError, match=message):
        sidlite.structural_analogy(*pair, **options)


def test_real_pair_from_the_benchmark_folder(shared_data):
    folder = shared_data / "analogy"
    if not (folder / "content" / "cornell.jpg").exists():
        pytest.skip("the analogy pairs are not in the shared data folder")
    structure = sidlite.load_image(folder / "content" / "cornell.jpg", 64)
    style = sidlite.load_image(folder / "style" / "thick_oil.jpg", 64)
    out = sidlite.structural_analogy(structure, style, noise_level=0.3, **FAST)
    assert low_band_correlation(out, structure) > low_band_correlation(out, style)
    assert sidlite.coherence(out, style, 5) < sidlite.coherence(out, structure, 5)


def test_cli_writes_once_and_refuses_to_overwrite(tmp_path, capsys):
    out = tmp_path / "a.png"
    args = ["analogy", "example:coffee", "example:astronaut", "-o", str(out), "--max-side", "48",
            "--patch-size", "5", "--steps", "3", "3", "8", "--noise-level", "0.4", "--quiet"]
    assert main(args) == 0
    assert sidlite.load_image(out).shape == (3, 48, 72)
    assert main(args) == 2
    assert "already exists" in capsys.readouterr().err
    code = main([*args[:-1], "--overwrite", "--steps", "3", "3", "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "--steps" in err and err.count("\n") == 1


def test_an_output_too_large_is_refused_by_its_plan_before_any_resize(pair):
    from sidlite.plan import PlanRefused

    structure, style = pair
    with pytest.raises(PlanRefused, match="memory budget"):  # was a 120 GB allocation in the resize
        sidlite.structural_analogy(structure, style, output_short_side=100_000, **FAST)
    for bad in (0, -5, 2.5, True):
        with pytest.raises(SidliteError, match="output_short_side must be a positive integer"):
            sidlite.structural_analogy(structure, style, output_short_side=bad, **FAST)
    with pytest.raises(SidliteError, match="channels"):
        sidlite.structural_analogy(structure[:1], style, **FAST)
