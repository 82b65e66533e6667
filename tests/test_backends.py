"""Every exact backend agrees with the naive NumPy reference, for all the regimes the sampler visits."""
import numpy as np
import pytest
import torch

from sidlite import SidliteError, make_backend, naive_denoise
from sidlite.backends import AttentionBackend, NaiveBackend, TopKBackend
from sidlite.backends.attention import head_dim

EXACT = ["exact", "attention"]


def data(n, m, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, d, generator=g) * 2 - 1, torch.randn(m, d, generator=g)


@pytest.mark.parametrize("name", EXACT)
@pytest.mark.parametrize("n,m,d", [(1, 5, 3), (300, 200, 27), (1000, 64, 147), (257, 33, 75)])
@pytest.mark.parametrize("alpha,sigma", [(0.0, 1.0), (1e-3, 1.0), (0.3, 0.7), (0.9, 0.1), (1.0, 1e-2), (1.0, 1e-4)])
def test_backends_match_naive(name, n, m, d, alpha, sigma):
    y, x = data(n, m, d)
    x = alpha * y[torch.randint(0, n, (m,))] + sigma * x  # queries as the sampler makes them
    reference = naive_denoise(x.double().numpy(), y.double().numpy(), alpha, sigma)
    out = make_backend(name, y).denoise(x, alpha, sigma)
    assert out.shape == (m, d) and out.dtype == torch.float32
    np.testing.assert_allclose(out.numpy(), reference, atol=2e-4, rtol=0)


def test_naive_matches_definition():
    """The expanded distance equals the definition ‖x − αy‖² written out with a loop."""
    y, x = data(20, 6, 4)
    alpha, sigma = 0.6, 0.4
    expected = []
    for q in x.double().numpy():
        logits = np.array([-((q - alpha * p) ** 2).sum() / (2 * sigma ** 2) for p in y.double().numpy()])
        w = np.exp(logits - logits.max())
        expected.append((w / w.sum()) @ y.double().numpy())
    np.testing.assert_allclose(naive_denoise(x.numpy(), y.numpy(), alpha, sigma), np.array(expected), atol=1e-12)


@pytest.mark.parametrize("name", ["naive", *EXACT])
def test_alpha_zero_is_mean(name):
    y, x = data(50, 7, 12)
    out = make_backend(name, y).denoise(x, 0.0, 1.0)
    torch.testing.assert_close(out, y.mean(0).expand(7, -1), atol=1e-6, rtol=0)


@pytest.mark.parametrize("name", ["naive", *EXACT])
def test_small_sigma_returns_nearest_patch(name):
    y, x = data(200, 30, 10)
    nearest = torch.cdist(x, y).argmin(1)
    out = make_backend(name, y).denoise(x, 1.0, 1e-4)
    torch.testing.assert_close(out, y[nearest], atol=1e-5, rtol=0)


def test_large_sigma_tends_to_mean():
    y, x = data(100, 10, 8)
    out = make_backend("attention", y).denoise(x, 1e-6, 1.0)
    torch.testing.assert_close(out, y.mean(0).expand(10, -1), atol=1e-5, rtol=0)


def test_exact_chunking_does_not_change_result():
    y, x = data(500, 300, 20)
    whole = make_backend("exact", y, max_scores=10 ** 9).denoise(x, 0.7, 0.3)
    chunked = make_backend("exact", y, max_scores=1000).denoise(x, 0.7, 0.3)
    torch.testing.assert_close(whole, chunked, atol=2e-5, rtol=0)


def test_attention_keys_do_not_alias_values():
    y, x = data(40, 5, 9)
    backend = AttentionBackend(y)
    before = backend.values.clone()
    backend.denoise(x, 0.5, 0.5)
    assert torch.equal(before, backend.values)
    assert head_dim(147) == 152 and head_dim(147, 64) == 192 and head_dim(675, 64) == 704


def test_naive_backend_roundtrip_types():
    y, x = data(10, 3, 4)
    out = NaiveBackend(y).denoise(x, 0.5, 0.5)
    assert isinstance(out, torch.Tensor) and out.dtype == x.dtype


@pytest.mark.parametrize("bad", [dict(alpha=-0.1, sigma=1.0), dict(alpha=0.5, sigma=0.0),
                                 dict(alpha=float("nan"), sigma=1.0), dict(alpha=0.5, sigma=-1.0)])
def test_bad_noise_levels_are_rejected(bad):
    y, x = data(10, 3, 4)
    with pytest.raises(SidliteError):
        make_backend("exact", y).denoise(x, **bad)


def test_bad_shapes_and_names():
    y, x = data(10, 3, 4)
    with pytest.raises(SidliteError, match="unknown backend"):
        make_backend("fast-please", y)
    with pytest.raises(SidliteError, match="queries must be"):
        make_backend("exact", y).denoise(torch.zeros(3, 5), 0.5, 0.5)
    with pytest.raises(SidliteError, match="NaN"):
        make_backend("exact", torch.full((4, 3), float("nan")))
    with pytest.raises(SidliteError):
        make_backend("exact", torch.zeros(0, 3))


def test_topk_with_one_probed_list_shorter_than_k():
    """nprobe = 1 and lists of at most 4 patches for k = 5: the missing candidates are -1, and the
    estimate is the softmax over the ones found (the exact posterior mean over that list)."""
    generator = torch.Generator().manual_seed(0)
    dataset = torch.randn(6, 4, generator=generator)
    backend = TopKBackend(dataset, k=5, nprobe=1, nlist=2, split_above=None)
    queries = torch.randn(3, 4, generator=generator)
    found = backend.neighbours(queries, 0.9)
    assert backend.longest_list < 5 and (found == -1).any(1).all()
    for row, query in zip(found, queries):
        members = row[row >= 0]
        assert sorted(members.tolist()) == sorted(torch.nonzero(backend.labels == backend.labels[members[0]])[:, 0].tolist())
        weights = torch.softmax(-((query - 0.9 * dataset[members]) ** 2).sum(1) / (2 * 0.5 ** 2), 0)
        assert torch.allclose(backend.denoise(query[None], 0.9, 0.5)[0], weights @ dataset[members], atol=1e-6)
