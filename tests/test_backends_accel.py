"""Clustered, top-k and FAISS backends, the attention backend's options, and the 'auto' choice."""
from __future__ import annotations

import pytest
import torch

import sidlite
from sidlite.backends import BACKENDS, choose_backend, make_backend, naive_denoise
from sidlite.backends.attention import head_dim
from sidlite.backends import clustered
from sidlite.backends.kmeans import kmeans, nearest_centroids, split_large_lists, two_level_kmeans
from sidlite.errors import SidliteError


def clustered_data(n=1200, dim=12, centres=16, seed=0):
    """Points around a few centres: the structure image patches have and k-means finds."""
    g = torch.Generator().manual_seed(seed)
    means = torch.randn(centres, dim, generator=g)
    which = torch.randint(centres, (n,), generator=g)
    return (means[which] + 0.3 * torch.randn(n, dim, generator=g)).float()


def noisy_queries(data, alpha, sigma, m=200, seed=1):
    g = torch.Generator().manual_seed(seed)
    picks = data[torch.randint(data.shape[0], (m,), generator=g)]
    return alpha * picks + sigma * torch.randn(picks.shape, generator=g)


DATA = clustered_data()


@pytest.mark.parametrize("alpha,sigma", [(0.9, 0.1), (0.5, 0.5), (0.2, 0.9)])
def test_probing_every_list_is_exact(alpha, sigma):
    backend = make_backend("clustered", DATA, nlist=20, nprobe=DATA.shape[0])  # capped at the final list count
    assert backend.nprobe == backend.nlist >= 20
    x = noisy_queries(DATA, alpha, sigma)
    expected = torch.from_numpy(naive_denoise(x.numpy(), DATA.numpy(), alpha, sigma)).float()
    assert torch.allclose(backend.denoise(x, alpha, sigma), expected, atol=1e-5)


def test_topk_with_every_list_and_k_equal_n_is_exact():
    small = DATA[:150]
    backend = make_backend("topk", small, nlist=6, nprobe=150, k=150)
    x = noisy_queries(small, 0.6, 0.4, m=40)
    expected = torch.from_numpy(naive_denoise(x.numpy(), small.numpy(), 0.6, 0.4)).float()
    assert torch.allclose(backend.denoise(x, 0.6, 0.4), expected, atol=1e-5)


def test_alpha_moves_onto_the_query():
    backend = make_backend("clustered", DATA, nprobe=3)
    x = noisy_queries(DATA, 0.4, 0.3)
    y = DATA[:50]
    alpha = 0.4
    lhs = torch.cdist(x.double(), alpha * y.double()) ** 2
    rhs = alpha ** 2 * torch.cdist(x.double() / alpha, y.double()) ** 2
    assert torch.allclose(lhs, rhs)
    # so the lists nearest to x/α are the lists of the scaled centroids α·c nearest to x
    assert torch.equal(backend.probe(x, alpha), nearest_centroids(x, alpha * backend.centroids, 3))


def test_error_falls_as_nprobe_grows():
    alpha, sigma = 0.5, 0.5
    x = noisy_queries(DATA, alpha, sigma, m=400)
    exact = make_backend("exact", DATA).denoise(x, alpha, sigma)
    backend = make_backend("clustered", DATA, nlist=32)
    errors = []
    for nprobe in (1, 2, 4, 8, backend.nlist):
        backend.nprobe = nprobe
        errors.append((backend.denoise(x, alpha, sigma) - exact).norm(dim=1).mean().item())
    assert all(a > b for a, b in zip(errors, errors[1:])), errors
    assert errors[-1] < 1e-5


def test_lists_partition_the_dataset():
    backend = make_backend("clustered", DATA, nlist=25)
    assert backend.list_sizes().sum().item() == DATA.shape[0]
    assert (backend.list_sizes() > 0).all()
    assert torch.equal(backend.sorted, DATA[backend.order])
    assert torch.equal(backend.order.sort().values, torch.arange(DATA.shape[0]))


def test_splitting_caps_the_lists_and_lowers_the_probed_size():
    kept = make_backend("clustered", DATA, nlist=8, split_above=None)
    split = make_backend("clustered", DATA, nlist=8, split_above=1.2)
    assert kept.nlist == 8 < split.nlist
    # before the final reassignment no list exceeds the cap; after it, hardly any does
    centroids, labels = split_large_lists(DATA, kept.centroids, cap=150, generator=torch.Generator().manual_seed(0))
    assert torch.bincount(labels).max() <= 1.2 * 150
    assert torch.equal(labels, nearest_centroids(DATA, centroids)[:, 0])

    def probed_size(backend):  # a query's cost: the size of the list it probes, averaged over the data
        sizes = backend.list_sizes().float()
        return float((sizes ** 2).sum() / sizes.sum())

    assert probed_size(split) < probed_size(kept)
    assert split.list_sizes().sum() == DATA.shape[0]


def test_same_seed_same_lists_same_output():
    x = noisy_queries(DATA, 0.5, 0.3)
    a = make_backend("clustered", DATA, seed=3, nprobe=2)
    b = make_backend("clustered", DATA, seed=3, nprobe=2)
    c = make_backend("clustered", DATA, seed=4, nprobe=2)
    assert torch.equal(a.labels, b.labels) and torch.equal(a.centroids, b.centroids)
    assert torch.equal(a.denoise(x, 0.5, 0.3), b.denoise(x, 0.5, 0.3))
    assert not torch.equal(a.centroids, c.centroids)


@pytest.mark.parametrize("init", ["random", "kmeans++"])
def test_kmeans_improves_on_its_start(init):
    g = torch.Generator().manual_seed(0)
    start, _ = kmeans(DATA, 16, iters=0, generator=g, init=init)
    g = torch.Generator().manual_seed(0)
    trained, labels = kmeans(DATA, 16, iters=10, generator=g, init=init)

    def cost(c):
        return ((DATA - c[nearest_centroids(DATA, c)[:, 0]]) ** 2).sum().item()

    assert cost(trained) < cost(start)
    assert torch.equal(labels, nearest_centroids(DATA, trained)[:, 0])


def test_topk_softmax_is_over_the_nearest_probed_patches():
    backend = make_backend("topk", DATA, k=5, nprobe=2)
    alpha, sigma = 0.7, 0.2
    x = noisy_queries(DATA, alpha, sigma, m=50)
    rows = backend.neighbours(x, alpha)
    y = DATA[rows]  # (M, k, D)
    logits = -((x[:, None, :] - alpha * y) ** 2).sum(-1) / (2 * sigma ** 2)
    expected = (torch.softmax(logits, 1)[:, :, None] * y).sum(1)
    assert torch.allclose(backend.denoise(x, alpha, sigma), expected, atol=1e-5)
    # the neighbours are the k nearest to x/α among the patches of the probed lists
    probed = backend.probe(x, alpha)
    for i in range(5):
        members = torch.isin(backend.labels, probed[i]).nonzero()[:, 0]
        dist = torch.cdist(x[i:i + 1] / alpha, DATA[members])[0]
        assert torch.equal(members[dist.topk(5, largest=False).indices], rows[i])


def test_faiss_agrees_with_topk():
    pytest.importorskip("faiss")
    ours = make_backend("topk", DATA, k=5, nprobe=3)
    theirs = make_backend("faiss", DATA, k=5, nprobe=3, centroids=ours.centroids)
    x = noisy_queries(DATA, 0.6, 0.3)
    a, b = ours.neighbours(x, 0.6), theirs.neighbours(x, 0.6)
    # the same neighbours up to ties: the same distances, rank by rank
    da = torch.cdist(x[:, None] / 0.6, DATA[a])[:, 0]
    db = torch.cdist(x[:, None] / 0.6, DATA[b])[:, 0]
    assert torch.allclose(da, db, atol=1e-4)
    assert (a == b).float().mean() > 0.99
    assert torch.allclose(ours.denoise(x, 0.6, 0.3), theirs.denoise(x, 0.6, 0.3), atol=1e-4)


def test_faiss_is_planned_and_sampled_like_any_backend():
    pytest.importorskip("faiss")
    import sidlite

    image = sidlite.example_image("gravel", 32)
    model = sidlite.SingleImageModel(image, 5, num_levels=1, backend="faiss:nprobe=4")
    assert model.plan.levels[0].backend == "faiss"  # the plan asks the backend's estimate
    assert model.sample(seed=0, steps=2).image.shape == image.shape


def test_faiss_trained_index_is_a_good_ann():
    pytest.importorskip("faiss")
    backend = make_backend("faiss", DATA, k=5, nprobe=4, seed=1)
    assert backend.nlist == 34 and backend.index.ntotal == DATA.shape[0]
    x = noisy_queries(DATA, 0.9, 0.05)
    exact = make_backend("exact", DATA).denoise(x, 0.9, 0.05)
    assert (backend.denoise(x, 0.9, 0.05) - exact).abs().max() < 1e-3


@pytest.mark.parametrize("name", ["clustered", "topk", "faiss"])
def test_alpha_zero_returns_the_mean(name):
    if name == "faiss":
        pytest.importorskip("faiss")
    backend = make_backend(name, DATA)
    out = backend.denoise(DATA[:7], 0.0, 1.0)
    assert torch.allclose(out, DATA.mean(0).expand(7, -1), atol=1e-6)


@pytest.mark.parametrize("name,options,message", [
    ("clustered", dict(nprobe=0), "nprobe"),
    ("clustered", dict(nlist=0), "nlist"),
    ("clustered", dict(nlist=10 ** 6), "nlist"),
    ("clustered", dict(iters=-1), "iters"),
    ("clustered", dict(init="best"), "init"),
    ("topk", dict(k=0), "k must"),
    ("topk", dict(nprobe=0), "nprobe"),
    ("faiss", dict(k=0), "k must"),
    ("faiss", dict(nprobe=0), "nprobe"),
])
def test_bad_options_raise_clear_errors(name, options, message):
    if name == "faiss":
        pytest.importorskip("faiss")
    with pytest.raises(SidliteError, match=message):
        make_backend(name, DATA, **options)


def test_backends_are_registered_by_name():
    for name in ("clustered", "topk", "faiss", "attention", "exact", "naive"):
        assert name in BACKENDS
    with pytest.raises(SidliteError, match="unknown backend"):
        make_backend("ivf", DATA)


def test_auto_picks_attention_for_small_and_topk_for_large_problems():
    cpu = torch.device("cpu")
    assert choose_backend(500, 675, cpu) == "attention"
    assert choose_backend(40_000, 675, cpu) == "topk"
    assert choose_backend(100_000, 147, torch.device("cuda")) == "attention"
    assert choose_backend(10_000_000, 784, torch.device("cuda")) == "topk"
    # the work is queries × patches: a small dataset denoising a large output is a large problem
    assert choose_backend(3_364, 784, cpu) == "attention"
    assert choose_backend(3_364, 784, cpu, num_queries=14_884) == "topk"
    small = make_backend("auto", DATA[:100])
    assert small.name == "attention"


def test_generation_with_the_clustered_backend_is_seeded():
    image = sidlite.example_image("stripes", 40)
    a = sidlite.generate(image, patch_size=5, num_levels=2, steps=4, backend="clustered", progress=False)
    b = sidlite.generate(image, patch_size=5, num_levels=2, steps=4, backend="clustered", progress=False)
    assert torch.equal(a, b) and a.shape == (1, *image.shape)
    assert torch.isfinite(a).all()


def test_attention_dtype_and_head_dim():
    assert head_dim(675) == 680 and head_dim(675, 64) == 704 and head_dim(147, 64) == 192
    x = noisy_queries(DATA, 0.5, 0.5)
    exact = make_backend("exact", DATA).denoise(x, 0.5, 0.5)
    fp32 = make_backend("attention", DATA)
    bf16 = make_backend("attention", DATA, dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16
    with pytest.raises(SidliteError, match="dtype"):
        make_backend("attention", DATA, dtype="fp8")
    assert torch.allclose(fp32.denoise(x, 0.5, 0.5), exact, atol=1e-5)
    out = bf16.denoise(x, 0.5, 0.5)
    assert out.dtype == torch.float32 and (out - exact).abs().max() < 0.1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("name,options", [("clustered", dict(nprobe=1000)), ("topk", dict(nprobe=1000, k=1200)),
                                          ("attention", {})])
def test_cuda_matches_exact(name, options):
    x = noisy_queries(DATA, 0.5, 0.3)
    exact = make_backend("exact", DATA).denoise(x, 0.5, 0.3)
    gpu = make_backend(name, DATA.cuda(), **options).denoise(x.cuda(), 0.5, 0.3).cpu()
    assert torch.allclose(exact, gpu, atol=1e-3)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_clustered_is_seeded():
    x = noisy_queries(DATA, 0.5, 0.3).cuda()
    a = make_backend("clustered", DATA.cuda(), nprobe=2).denoise(x, 0.5, 0.3)
    b = make_backend("clustered", DATA.cuda(), nprobe=2).denoise(x, 0.5, 0.3)
    assert torch.equal(a, b)


def test_lists_stop_growing_past_65536_patches():
    assert clustered.default_nlist(40_000) == 200  # √N
    assert clustered.default_nlist(65_536) == 256
    assert clustered.default_nlist(1_000_000) == 1_000_000 // clustered.LIST_SIZE  # not √N = 1000


def within_list_spread(data, centroids, labels):
    return float(((data - centroids[labels]) ** 2).sum())


def test_two_level_kmeans_makes_lists_as_tight_as_flat_kmeans():
    data = clustered_data(n=6000, dim=8, centres=64, seed=3)
    g = torch.Generator().manual_seed(0)
    centroids, labels = two_level_kmeans(data, 100, cap=90, generator=g)
    sizes = torch.bincount(labels, minlength=centroids.shape[0])
    assert labels.min() >= 0 and labels.max() == centroids.shape[0] - 1
    assert int(sizes.max()) <= 90 and 100 <= centroids.shape[0] <= 140  # each cell's share, then its splits
    flat, flat_labels = kmeans(data, centroids.shape[0], generator=torch.Generator().manual_seed(0))
    assert within_list_spread(data, centroids, labels) < 1.15 * within_list_spread(data, flat, flat_labels)
    again = two_level_kmeans(data, 100, cap=90, generator=torch.Generator().manual_seed(0))
    assert torch.equal(again[1], labels)  # the same seed, the same lists


def test_many_lists_are_probed_through_a_coarse_index(monkeypatch):
    data = clustered_data(n=6000, dim=8, centres=64, seed=4)
    x = noisy_queries(data, 0.8, 0.4, m=400)
    backend = make_backend("topk", data, nlist=clustered.FLAT_LISTS + 72)
    assert backend.coarse is not None and backend.coarse.num_patches == backend.nlist
    flat = nearest_centroids(x, 0.8 * backend.centroids, backend.nprobe)
    probed = backend.probe(x, 0.8)
    assert (probed[:, 0] == flat[:, 0]).float().mean() > 0.9  # the nearest list, nearly always
    # reading every coarse list, the coarse probe is the flat probe
    monkeypatch.setattr(clustered, "COARSE_PROBE", 10 ** 6)
    exhaustive = make_backend("topk", data, nlist=clustered.FLAT_LISTS + 72)
    assert (exhaustive.probe(x, 0.8) == nearest_centroids(x, 0.8 * exhaustive.centroids, 2)).all(1).float().mean() > 0.99
    small = make_backend("topk", data, nlist=clustered.FLAT_LISTS)
    assert small.coarse is None


def test_a_two_level_index_scans_alike_in_batches_and_in_the_loop():
    """The GPU's batched scan over a two-level index (many lists, a coarse probe) finds what the loop finds."""
    data = clustered_data(n=6000, dim=8, centres=64, seed=5)
    x = noisy_queries(data, 0.8, 0.4, m=400)
    loop = make_backend("topk", data, nlist=clustered.FLAT_LISTS + 72, scan="loop")
    batched = make_backend("topk", data, nlist=clustered.FLAT_LISTS + 72, scan="batched")
    assert batched.coarse is not None and torch.equal(loop.probe(x, 0.8), batched.probe(x, 0.8))
    assert torch.equal(loop.neighbours(x, 0.8), batched.neighbours(x, 0.8))
    torch.testing.assert_close(batched.denoise(x, 0.8, 0.3), loop.denoise(x, 0.8, 0.3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("name,options", [("topk", {}), ("topk", {"rank_dim": 6}), ("clustered", {}),
                                          ("clustered", {"nprobe": 1})])
def test_a_call_of_many_chunks_writes_each_into_place(monkeypatch, name, options):
    """Split into chunks whose estimates are written straight into the call's output (and, for top-k, weighed
    in blocks), a call returns what one chunk returns."""
    x = noisy_queries(DATA, 0.7, 0.3, m=300)
    backend = make_backend(name, DATA, **options)
    whole = backend.denoise(x, 0.7, 0.3)
    monkeypatch.setattr(clustered, "MAX_SELECTED_PAIRS", 64)  # 32 queries a chunk with 2 lists probed
    monkeypatch.setattr(clustered, "MAX_PAIRS", 64)
    monkeypatch.setattr(clustered, "EMBED_BLOCK", 7)
    assert backend._queries_per_chunk() < x.shape[0]
    torch.testing.assert_close(backend.denoise(x, 0.7, 0.3), whole, atol=1e-5, rtol=0)
