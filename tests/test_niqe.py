"""NIQE: the features equal an independent implementation's, the distribution fits recover known shapes,
the score tells clean from degraded images, and the pristine model loads from its files or says which."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

import sidlite
from sidlite.errors import SidliteError
from sidlite.evaluation import NIQEModel, load_benchmark, measure, niqe
from sidlite.evaluation.niqe import aggd_fit, block_features

# Mean block features of sinddm15/aqueduct.png (4 blocks) from BasicSR 1.4.2's NIQE, whose scores equal
# the original MATLAB release's to four decimals (BasicSR's own test): an independent implementation.
AQUEDUCT_REFERENCE = [
    2.2465, 0.957167, 0.74925, 0.146339, 0.139057, 0.231981, 0.7775, -0.077148, 0.227079, 0.176004, 0.7745,
    -0.133456, 0.237843, 0.151049, 0.782, -0.084811, 0.228799, 0.167614, 2.2575, 0.830787, 0.69475, 0.110374,
    0.103637, 0.159614, 0.70925, -0.0210492, 0.147344, 0.138149, 0.75725, -0.0973267, 0.187424, 0.127334, 0.755,
    -0.0518288, 0.174895, 0.137165]
# BasicSR's NIQE with the original pristine model, for the check that runs where the file is installed.
REFERENCE_SCORES = {"aqueduct": 6.07679, "pyramids": 8.33025, "starry_night": 4.00832}


@pytest.fixture(scope="module")
def fitted() -> NIQEModel:
    """A pristine model fitted on four bundled photographs (no file needed)."""
    return NIQEModel.fit([sidlite.example_image(n) for n in ("astronaut", "coffee", "chelsea", "rocket")])


def _blur(image: torch.Tensor, sigma: float = 2.0) -> torch.Tensor:
    taps = torch.exp(-torch.arange(-6, 7.0) ** 2 / (2 * sigma ** 2))
    taps = taps / taps.sum()
    x = F.conv2d(F.pad(image[:, None], (6, 6, 0, 0), mode="replicate"), taps.view(1, 1, 1, 13))
    return F.conv2d(F.pad(x, (0, 0, 6, 6), mode="replicate"), taps.view(1, 1, 13, 1))[:, 0]


def test_features_equal_the_reference_implementation(shared_data):
    image = load_benchmark(root=shared_data)["aqueduct"]
    features, sharpness = block_features(image)
    assert features.shape == (4, 36) and sharpness.shape == (4,)
    assert torch.allclose(features.mean(0), torch.tensor(AQUEDUCT_REFERENCE, dtype=torch.float64),
                          rtol=1e-4, atol=1e-6)


def test_aggd_fit_recovers_known_shapes_and_scales():
    from scipy.stats import gennorm

    for shape in (0.7, 1.0, 2.0, 4.0):
        magnitudes = torch.from_numpy(np.abs(gennorm.rvs(shape, size=(4, 400_000), random_state=1)))
        # an AGGD with left scale 1 and right scale 2 puts mass 1/(1 + 2) on the left
        left_side = torch.rand(magnitudes.shape, generator=torch.Generator().manual_seed(2)) < 1 / 3
        values = torch.where(left_side, -magnitudes, 2 * magnitudes)
        alpha, left, right = aggd_fit(values.double())
        assert torch.allclose(alpha, torch.full_like(alpha, shape), rtol=0.04), (shape, alpha)
        assert torch.allclose(left, torch.ones_like(left), rtol=0.03)
        assert torch.allclose(right, torch.full_like(right, 2.0), rtol=0.03)


def test_niqe_tells_clean_from_blurred_and_noisy(shared_data, fitted):
    images = load_benchmark(root=shared_data)
    generator = torch.Generator().manual_seed(0)
    for name in ("aqueduct", "night_sky", "seascape", "starry_night"):
        clean = images[name]
        noisy = (clean + 0.1 * torch.randn(clean.shape, generator=generator)).clamp(-1, 1)
        score = niqe(clean, fitted)
        assert score < niqe(_blur(clean), fitted) and score < niqe(noisy, fitted), name


def test_niqe_is_zero_against_the_image_own_model_and_measured_by_the_protocol(fitted):
    image = sidlite.example_image("coffee")
    own = NIQEModel.fit([image], sharpness_threshold=0.0)  # every block: the image's own Gaussian
    assert niqe(image, own) == pytest.approx(0, abs=1e-6)
    samples = torch.stack([image[:, :200, :300], image[:, 100:300, 200:500]])
    row = measure(samples, image, niqe_model=fitted)
    assert row["niqe"] == pytest.approx((niqe(samples[0], fitted) + niqe(samples[1], fitted)) / 2)


def test_pristine_model_files_load_and_a_missing_one_is_named(tmp_path, fitted, monkeypatch):
    from scipy.io import savemat

    fitted.save(tmp_path / "niqe_pris_params.npz")
    loaded = NIQEModel.pretrained(tmp_path / "niqe_pris_params.npz")
    assert torch.equal(loaded.mean, fitted.mean) and torch.equal(loaded.cov, fitted.cov)
    savemat(tmp_path / "modelparameters.mat",
            {"mu_prisparam": fitted.mean.numpy()[None], "cov_prisparam": fitted.cov.numpy()})
    monkeypatch.setenv("SIDLITE_WEIGHTS", str(tmp_path))
    (tmp_path / "niqe_pris_params.npz").unlink()
    assert torch.equal(NIQEModel.pretrained().mean, fitted.mean)
    np.savez(tmp_path / "wrong.npz", mu_pris_param=np.zeros(18), cov_pris_param=np.eye(18))
    with pytest.raises(SidliteError, match="not NIQE's 36 features"):
        NIQEModel.pretrained(tmp_path / "wrong.npz")
    with pytest.raises(SidliteError, match="niqe_pris_params.npz"):
        NIQEModel.pretrained(tmp_path / "missing.npz")


def test_too_small_an_image_is_refused(fitted):
    with pytest.raises(SidliteError, match="at least 96x96"):
        niqe(torch.zeros(3, 95, 300), fitted)
    with pytest.raises(SidliteError, match="at least 2 blocks"):
        niqe(sidlite.example_image("coffee")[:, :100, :100], fitted)


def test_scores_equal_the_reference_with_the_original_model(shared_data):
    try:
        model = NIQEModel.pretrained()
    except SidliteError:
        pytest.skip("NIQE's original pristine model is not on disk")
    images = load_benchmark(root=shared_data)
    for name, expected in REFERENCE_SCORES.items():
        assert niqe(images[name], model) == pytest.approx(expected, abs=1e-4), name
