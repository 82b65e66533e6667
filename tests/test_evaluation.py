"""Evaluation: fast metrics equal the dense ones, the layout measure, baselines' defining properties,
the networks' plumbing (random weights, torchvision key names) and the protocol."""
import math

import pytest
import torch

import sidlite
import sidlite.metrics as M
from sidlite.baselines import copy_baseline, gpdm, gpnn, normalized_nearest, patch_swd_loss
from sidlite.errors import SidliteError
from sidlite.evaluation import (InceptionBlock1, LPIPSAlex, evaluate, find_weights, load_benchmark,
                                lpips_diversity, measure, sifid)
from sidlite.evaluation.networks import _frechet
from sidlite.patches import extract_patches


@pytest.fixture(scope="module")
def photo():
    """A 72×96 photo: 6.3k patches of 5×5, enough for the k-d tree path (queries × rows > 2^24)."""
    return sidlite.example_image("coffee", max_side=96)


def _brute(queries, dataset):
    """Exact float64 nearest squared distances, chunked."""
    q, d = queries.double(), dataset.double()
    return torch.cat([torch.cdist(q[s:s + 512], d).pow(2).min(1).values for s in range(0, q.shape[0], 512)])


def test_nearest_patches_fast_path_equals_the_exact_minimum(photo):
    noisy = (photo + 0.03 * torch.randn(photo.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
    shifted = torch.roll(photo, (7, 11), (1, 2))
    for sample in (noisy, shifted):
        q, d = extract_patches(sample, 5), extract_patches(photo, 5)
        assert q.shape[0] * d.shape[0] > 2 ** 24  # the k-d tree path, not the dense one
        dist, index = M.nearest_patches(q, d)
        truth = _brute(q, d) / d.shape[1]
        assert torch.allclose(dist.double(), truth, rtol=1e-5, atol=1e-9)
        # the index returned is a row at that distance
        again = ((q.double() - d[index].double()) ** 2).mean(1)
        assert torch.allclose(again, truth, rtol=1e-5, atol=1e-9)
        upper, _ = M.nearest_patches(q, d, exact=False)
        assert (upper.double() >= truth - 1e-7).all()


def test_copy_fraction_fast_equals_dense(photo, monkeypatch):
    half = torch.rand(photo.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    half[:, :, :48] = photo[:, :, 20:68]
    cases = [photo, torch.roll(photo, (5, 9), (1, 2)), half, copy_baseline(photo, seed=3)]
    fast = [M.copy_fraction(c, photo, patch_size=5) for c in cases]

    def dense(queries, dataset, **options):
        best, index = M._dense_nearest(queries, dataset)
        return (best / dataset.shape[1]).float(), index

    monkeypatch.setattr(M, "nearest_patches", dense)
    slow = [M.copy_fraction(c, photo, patch_size=5) for c in cases]
    assert fast == slow
    assert fast[0] == 1.0 and 0.4 < fast[2] < 0.6


def test_layout_distance_tells_a_shifted_copy_from_a_rearrangement(photo):
    shifted = copy_baseline(photo, seed=1, max_shift=0.1)
    swapped = torch.cat([photo[:, :, 48:], photo[:, :, :48]], dim=2)
    flipped = photo.flip(1)
    assert M.layout_distance(photo, photo) == pytest.approx(0, abs=1e-9)
    assert M.layout_distance(shifted, photo) < 0.15
    assert M.layout_distance(swapped, photo) > 0.5
    assert M.layout_distance(flipped, photo) > 0.5
    noise = torch.randn(photo.shape, generator=torch.Generator().manual_seed(0)) * photo.std() + photo.mean()
    assert 1.1 < M.layout_distance(noise, photo, short_side=96) < 1.6  # unrelated: about √2


def test_pixel_diversity_variants_known_values(photo):
    pair = torch.stack([photo, -photo])
    grey = photo.double().mean(0)
    assert M.pixel_diversity_gray(pair, photo, unbiased=False) == pytest.approx(
        float(grey.abs().mean() / grey.std(unbiased=False)), rel=1e-9)
    assert M.pixel_spread(pair) == pytest.approx(float(photo.double().abs().mean() / 2), rel=1e-9)
    same = torch.stack([photo, photo])
    assert M.pixel_spread(same) == 0 and M.pixel_diversity_gray(same, photo) == 0
    # scale: SinGAN's ratio does not change when the image's contrast does; the spread does
    assert M.pixel_diversity(0.5 * pair, 0.5 * photo) == pytest.approx(M.pixel_diversity(pair, photo), rel=1e-9)
    assert M.pixel_spread(0.5 * pair) == pytest.approx(0.5 * M.pixel_spread(pair), rel=1e-9)


def test_copy_baseline_is_a_shifted_copy(photo):
    sample = copy_baseline(photo, seed=5, max_shift=0.1)
    assert sample.shape == photo.shape and not torch.equal(sample, photo)
    assert M.copy_fraction(sample, photo, patch_size=5) >= 0.8
    assert torch.equal(copy_baseline(photo, seed=5), copy_baseline(photo, seed=5))


def test_normalized_nearest_matches_its_formula():
    g = torch.Generator().manual_seed(0)
    q, k = torch.rand(60, 12, generator=g) * 2 - 1, torch.rand(40, 12, generator=g) * 2 - 1
    d = torch.cdist(q.double(), k.double()) ** 2 / 4
    for alpha in (0.005, 0.5):
        expected = (d / (alpha + d.min(0).values)).argmin(1)
        assert torch.equal(normalized_nearest(q, k, alpha), expected)
    assert torch.equal(normalized_nearest(q, k, math.inf), d.argmin(1))
    # small α spreads the votes: more distinct keys are used (completeness)
    assert normalized_nearest(q, k, 0.005).unique().numel() > normalized_nearest(q, k, math.inf).unique().numel()


def test_normalized_nearest_approx_agrees_mostly(photo):
    keys = extract_patches(photo, 5)
    queries = extract_patches(torch.roll(photo, (3, 4), (1, 2)) + 0.02, 5)
    exact, approx = normalized_nearest(queries, keys, 0.005), normalized_nearest(queries, keys, 0.005, search="approx")
    assert (exact == approx).float().mean() > 0.8


def test_gpnn_sample_is_made_of_input_patches(small_image):
    sample = gpnn(small_image, seed=0, patch_size=5, coarsest=10, iterations=3, search="exact")
    assert sample.shape == small_image.shape
    noise = torch.rand(small_image.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1
    assert M.coherence(sample, small_image, 5) < 0.1 * M.coherence(noise, small_image, 5)
    assert not torch.equal(sample, gpnn(small_image, seed=1, patch_size=5, coarsest=10, iterations=3, search="exact"))
    assert gpnn(small_image, size=(30, 70), seed=0, patch_size=5, coarsest=10, iterations=2).shape == (3, 30, 70)


def test_gpdm_lowers_the_patch_swd(small_image):
    g = torch.Generator().manual_seed(0)
    directions = torch.nn.functional.normalize(torch.randn(75, 32, generator=g), dim=0)
    target = extract_patches(small_image, 5)
    assert float(patch_swd_loss(small_image, target, directions, 5)) == pytest.approx(0, abs=1e-12)
    sample = gpdm(small_image, seed=0, patch_size=5, coarsest=20, steps=30)
    noise = torch.rand(small_image.shape, generator=g) * 2 - 1
    assert sample.shape == small_image.shape
    assert M.patch_swd(sample, small_image) < 0.3 * M.patch_swd(noise, small_image)


def _fake_weights(folder, tmp_net, extra):
    state = {**tmp_net.state_dict(), **extra}
    return state


def test_sifid_network_loads_torchvision_keys_and_measures(tmp_path, small_image):
    torch.manual_seed(0)
    net = InceptionBlock1()
    state = {k: v for k, v in net.state_dict().items()}
    state["Mixed_5b.branch1x1.conv.weight"] = torch.zeros(64, 192, 1, 1)  # more of the network: ignored
    state["fc.weight"] = torch.zeros(1000, 2048)
    torch.save(state, tmp_path / "inception_v3_google-0cc3c7bd.pth")
    loaded = InceptionBlock1.pretrained(tmp_path / "inception_v3_google-0cc3c7bd.pth")
    assert torch.equal(loaded.Conv2d_2b_3x3.conv.weight, net.Conv2d_2b_3x3.conv.weight)
    features = loaded(small_image[None])
    assert features.shape == (1, 64, ((40 - 3) // 2 + 1 - 2 - 3) // 2 + 1, ((56 - 3) // 2 + 1 - 2 - 3) // 2 + 1)
    assert sifid(small_image, small_image, loaded) == pytest.approx(0, abs=1e-6)
    assert sifid(small_image.flip(2), small_image, loaded) < sifid(torch.zeros_like(small_image), small_image, loaded)
    with pytest.raises(SidliteError, match="inception_v3_google"):
        InceptionBlock1.pretrained(tmp_path / "missing.pth")


def test_frechet_distance_formula():
    from scipy.linalg import sqrtm

    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(200, 6, generator=g, dtype=torch.float64), torch.randn(200, 6, generator=g, dtype=torch.float64) * 1.5 + 0.3
    c1, c2 = torch.cov(a.T), torch.cov(b.T)
    expected = float(((a.mean(0) - b.mean(0)) ** 2).sum() + torch.trace(c1) + torch.trace(c2)
                     - 2 * torch.from_numpy(sqrtm((c1 @ c2).numpy()).real).trace())
    assert _frechet(a.mean(0), c1, b.mean(0), c2) == pytest.approx(expected, rel=1e-8)


def test_lpips_network_loads_by_key_and_is_a_distance(tmp_path, small_image, monkeypatch):
    torch.manual_seed(0)
    net = LPIPSAlex()
    for l in range(5):
        torch.nn.init.uniform_(getattr(net, f"lin{l}").model[1].weight, 0, 1)
    alex = {k: v for k, v in net.state_dict().items() if k.startswith("features.")}
    alex["classifier.1.weight"] = torch.zeros(4096, 9216)
    lin = {k: v for k, v in net.state_dict().items() if k.startswith("lin")}
    torch.save(alex, tmp_path / "alexnet-owt-7be5be79.pth")
    torch.save(lin, tmp_path / "alex.pth")
    monkeypatch.setenv("SIDLITE_WEIGHTS", str(tmp_path))
    assert find_weights("alexnet") == tmp_path / "alexnet-owt-7be5be79.pth"
    loaded = LPIPSAlex.pretrained()
    image = sidlite.example_image("chelsea", max_side=96)
    x = torch.stack([image, image, image.flip(2)])
    with torch.no_grad():
        d = loaded(x[:1], x[1:])
    assert float(d[0]) == pytest.approx(0, abs=1e-7) and float(d[1]) > 0
    assert lpips_diversity(x, loaded) == pytest.approx(2 / 3 * float(d[1]), rel=1e-5)
    monkeypatch.setenv("SIDLITE_WEIGHTS", str(tmp_path / "nowhere"))
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    with pytest.raises(SidliteError, match="alex"):
        LPIPSAlex.pretrained()


def test_load_benchmark(shared_data):
    images = load_benchmark(root=shared_data, max_side=64)
    assert len(images) == 15 and all(v.shape[0] == 3 and max(v.shape[1:]) <= 64 for v in images.values())
    with pytest.raises(SidliteError, match="sinddm15"):
        load_benchmark(root=shared_data / "nowhere")


def test_evaluate_returns_one_table(small_image):
    table = evaluate(["copy", "sidlite-auto"], {"cat": small_image, "flip": small_image.flip(2)}, samples_per_image=2,
                     patch_size=5, num_levels=2, networks=False, keep_samples=True)
    assert [r["method"] for r in table.rows] == ["copy", "copy", "sidlite-auto", "sidlite-auto"]
    summary = table.summary()
    assert summary["copy"]["layout_distance"][0] < 0.2 < summary["sidlite-auto"]["layout_distance"][0]
    assert summary["copy"]["copy_fraction"][0] > summary["sidlite-auto"]["copy_fraction"][0]
    assert table.samples[("copy", "cat")].shape == (2, *small_image.shape)
    assert "sifid" not in table.metrics() and "| copy |" in table.markdown()
    with pytest.raises(SidliteError, match="unknown method"):
        evaluate("nope", {"cat": small_image})


def test_table_says_when_a_metric_covers_only_some_images():
    from sidlite.evaluation import EvaluationTable

    table = EvaluationTable(rows=[{"method": "m", "image": "a", "patch_swd": 0.1, "niqe": 8.0},
                                  {"method": "m", "image": "b", "patch_swd": 0.3}])
    line = table.markdown().splitlines()[2]
    assert "8.000 ± 0.000 (1 of 2 images)" in line and "0.200 ± 0.100 |" in line
