"""The compiled CPU kernels (sidlite.native): row-wise top-k against torch.topk, the windowed fold against
the torch fold, each also through its torch fallback."""
import pytest
import torch

import sidlite
from sidlite import native
from sidlite.backends import kmeans, make_backend, shortlist
from sidlite.backends.kmeans import nearest_centroids
from sidlite.backends.selection import scan_top_k, top_k_rows
from sidlite.patches import extract_patches, fold_add, fold_windowed, gaussian_window, patch_grid, windowed_rows


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """The kernels built afresh into an empty cache folder (skips where this machine cannot build them)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIDLITE_CACHE", str(tmp_path_factory.mktemp("cache")))
        native.library.cache_clear()
        built = native.library()
    native.library.cache_clear()
    if built is None:
        pytest.skip("no C compiler with OpenMP here: the torch fallbacks serve")
    return built


@pytest.fixture(params=["native", "fallback"])
def path(request, kernels, monkeypatch):
    """Each test runs on the kernels and on the torch fallbacks."""
    use = request.param == "native"
    monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name) if use else None)
    return request.param


def masked(scores, lengths):
    return scores.masked_fill(torch.arange(scores.shape[1])[None, :] >= lengths[:, None], -torch.inf)


def check_against_topk(scores, k, values, columns):
    """The same values as torch.topk, in descending order, and the columns hold those values."""
    expected = scores.topk(k, dim=1).values
    assert torch.equal(values, expected)
    found = torch.isfinite(values)
    assert torch.equal(scores.gather(1, columns)[found], values[found])


@pytest.mark.parametrize("width,k", [(332, 5), (209, 2), (3000, 5), (70000, 5), (40, 5), (7, 5), (100, 1)])
def test_top_k_rows_equals_torch_topk(path, width, k):
    g = torch.Generator().manual_seed(width + k)
    scores = torch.randn(300 if width < 10000 else 20, width, generator=g)
    values, columns = top_k_rows(scores.clone(), k)
    if width < k:  # fewer entries than k: −inf values at column 0 after the real ones
        assert torch.isinf(values[:, width:]).all() and (columns[:, width:] == 0).all()
        values, columns, k = values[:, :width], columns[:, :width], width
    check_against_topk(scores, k, values, columns)


def test_row_lengths_leave_the_rest_of_a_row_unread(path):
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(500, 330, generator=g)
    lengths = torch.randint(0, 331, (500,), generator=g)
    lengths[:3] = torch.tensor([0, 2, 330])
    table = scores.clone()
    table[torch.arange(330)[None, :] >= lengths[:, None]] = 1e9  # scratch past each length: must not win
    values, columns = top_k_rows(table, 5, lengths)
    reference = masked(scores, lengths)
    check_against_topk(reference, 5, values, columns)
    assert (columns[~torch.isfinite(values)] == 0).all()  # missing candidates point at column 0


def test_ties_and_the_winner_in_every_position(path):
    """The grouping must not lose a winner wherever it sits: a plateau, a single spike at each column,
    and rows whose best entries all share one column group."""
    width = 16 * 20 + 3
    scores = torch.zeros(width + 2, width)
    scores[torch.arange(width), torch.arange(width)] = 1.0  # row r: its one spike at column r
    scores[width, ::20] = torch.arange(len(range(0, width, 20)), dtype=torch.float32)  # one group holds all
    values, columns = top_k_rows(scores.clone(), 5)
    assert torch.equal(columns[:width, 0], torch.arange(width)) and (values[:width, 1:] == 0).all()
    check_against_topk(scores, 5, values, columns)


def test_non_contiguous_and_other_dtypes_fall_back_to_torch(monkeypatch):
    calls = []  # a stand-in kernel that only records being run
    monkeypatch.setattr(native, "kernel", lambda name: lambda *arguments: calls.append(name))
    scores = torch.randn(50, 64, dtype=torch.float64)
    values, _ = top_k_rows(scores, 5)
    assert torch.equal(values, scores.topk(5, dim=1).values) and not calls
    transposed = torch.randn(64, 50).T  # rows not contiguous
    assert torch.equal(top_k_rows(transposed, 3)[0], transposed.topk(3, dim=1).values) and not calls


@pytest.mark.parametrize("patch_size,stride,channels,batch", [(7, 1, 3, 1), (15, 1, 3, 2), (5, 2, 4, 1), (3, 3, 1, 1),
                                                              (4, 3, 3, 2)])
def test_fold_windowed_adds_what_the_torch_fold_adds(path, patch_size, stride, channels, batch):
    """Into a band of a larger image (strided rows), several images at once, every stride and window."""
    g = torch.Generator().manual_seed(patch_size * 10 + stride)
    height, width = 37, 45
    rows, cols = patch_grid(height, width, patch_size, stride)
    estimates = torch.randn(batch * rows * cols, channels * patch_size ** 2, generator=g)
    window = gaussian_window(patch_size, 0.2).flatten().repeat(channels) * torch.rand(channels * patch_size ** 2,
                                                                                      generator=g)
    image = torch.randn(batch, channels, height + 9, width, generator=g)
    folded, expected = image.clone(), image.clone()
    fold_windowed(folded[:, :, 4:4 + height], estimates, window, rows, cols, patch_size, stride)
    for i in range(batch):  # the definition, one patch at a time
        for r in range(rows):
            for c in range(cols):
                patch = (estimates[(i * rows + r) * cols + c] * window).view(channels, patch_size, patch_size)
                expected[i, :, 4 + r * stride:4 + r * stride + patch_size, c * stride:c * stride + patch_size] += patch
    assert torch.allclose(folded, expected, atol=1e-5)
    assert torch.equal(folded[:, :, :4], image[:, :, :4]) and torch.equal(folded[:, :, 4 + height:], image[:, :, 4 + height:])


def test_the_kernel_fold_does_not_depend_on_the_thread_count(kernels, monkeypatch):
    monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name))
    g = torch.Generator().manual_seed(3)
    rows, cols = patch_grid(120, 90, 7, 1)
    estimates, window = torch.randn(rows * cols, 147, generator=g), gaussian_window(7).flatten().repeat(3)
    results = []
    for threads in (1, 2, 3):
        monkeypatch.setattr(torch, "get_num_threads", lambda: threads)
        results.append(fold_windowed(torch.zeros(1, 3, 120, 90), estimates, window, rows, cols, 7))
    assert torch.equal(results[0], results[1]) and torch.equal(results[0], results[2])
    reference = fold_add(torch.zeros(1, 3, 120, 90), windowed_rows(estimates, window, rows, cols), 7)
    assert torch.allclose(results[0], reference, atol=1e-5)


def test_switched_off_or_without_a_compiler_there_are_no_kernels(monkeypatch, tmp_path):
    monkeypatch.setenv("SIDLITE_CACHE", str(tmp_path))
    for setting in ({"SIDLITE_NATIVE": "0"}, {"CC": str(tmp_path / "no-such-compiler")}):
        with monkeypatch.context() as patch:
            for name, value in setting.items():
                patch.setenv(name, value)
            native.library.cache_clear()
            assert native.library() is None and native.kernel("sidlite_fold_windowed") is None
    native.library.cache_clear()
    assert not list(tmp_path.glob("*.so"))  # nothing half-built is left behind


def test_top_k_backend_finds_the_same_with_and_without_the_kernels(kernels, monkeypatch):
    """With the kernel each list's winners are chosen as its scores are made; without it, from one table."""
    from sidlite.backends import make_backend

    g = torch.Generator().manual_seed(5)
    data = torch.randn(3000, 27, generator=g)
    queries = 0.8 * data[torch.randperm(3000, generator=g)[:700]] + 0.3 * torch.randn(700, 27, generator=g)
    found = {}
    for use in (True, False):
        monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name) if use else None)
        backend = make_backend("topk", data, nprobe=3)
        found[use] = backend.neighbours(queries, 0.8), backend.denoise(queries, 0.8, 0.3)
    assert (found[True][0] == found[False][0]).float().mean() > 0.999  # the same, up to ties
    assert torch.allclose(found[True][1], found[False][1], atol=1e-5)


def test_a_list_every_query_probes_is_shared_and_scanned_in_chunks(kernels, monkeypatch):
    """A flat image puts every patch in one list: the fused scan splits its 600 queries into work items of
    256 and its 2,600 patches into chunks of 1,024, whose winners it merges; it must find the exact top 5."""
    from sidlite.backends import make_backend

    monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name))
    g = torch.Generator().manual_seed(2)
    data = torch.zeros(2600, 12)
    data[:, 0] = torch.arange(2600) / 2600  # nearly flat: one list
    data[:, 1:] = 0.01 * torch.randn(2600, 11, generator=g)
    backend = make_backend("topk", data, nlist=1)
    queries = data[torch.randperm(2600, generator=g)[:600]] + 0.003 * torch.randn(600, 12, generator=g)
    expected = torch.cdist(queries, data).topk(5, dim=1, largest=False).indices.sort(1).values
    assert torch.equal(backend.neighbours(queries).sort(1).values, expected)


@pytest.mark.parametrize("dim,k,nlist", [(5, 1, 8), (16, 5, 40), (27, 16, 30), (147, 5, 400), (33, 20, 20)])
def test_the_fused_scan_chooses_what_the_table_scan_chooses(kernels, monkeypatch, logit_rounding, dim, k, nlist):
    """Dimensions that are and are not whole vectors, k from 1 to past the vector width (then the plain
    selection), and lists shorter than k (400 lists of 3: their padding must never be chosen)."""
    from sidlite.backends import make_backend

    g = torch.Generator().manual_seed(dim)
    data = torch.randn(1200, dim, generator=g)
    queries = 0.8 * data[:300] + 0.3 * torch.randn(300, dim, generator=g)
    found = {}
    for use in (True, False):
        monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name) if use else None)
        backend = make_backend("topk", data, k=k, nlist=nlist, nprobe=2, split_above=None)
        found[use] = backend.neighbours(queries, 0.8), backend.denoise(queries, 0.8, 0.3)
    assert (found[True][0] == found[False][0]).float().mean() > 0.999  # the same, up to ties
    assert torch.equal(found[True][0] < 0, found[False][0] < 0)  # missing candidates in the same places
    # The two scans round each logit differently (the largest logit is ~10³ at d = 147).
    largest_logit = 0.8 / 0.3 ** 2 * float((queries.abs() @ data.abs().T).max())
    assert torch.allclose(found[True][1], found[False][1], atol=logit_rounding(largest_logit, float(data.abs().max())))


@pytest.mark.parametrize("k", [1, 5, 16])
def test_the_fused_scan_keeps_the_best_values_among_tied_scores(kernels, monkeypatch, k):
    """Patches repeated many times tie in score, so many groups share one maximum: the ranks break the ties
    by lane, and the values kept must still be the k largest, as the table scan finds them."""
    g = torch.Generator().manual_seed(11)
    distinct = torch.randn(400, 12, generator=g)
    data = distinct.repeat_interleave(3, 0)  # 1,200 patches, each three times: the k best span several values
    queries = 0.8 * distinct[torch.randint(0, 400, (200,), generator=g)] + 0.2 * torch.randn(200, 12, generator=g)
    distances = {}
    for use in (True, False):
        monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name) if use else None)
        backend = make_backend("topk", data, k=k, nlist=6, nprobe=2)
        rows = backend.neighbours(queries, 0.8)
        assert (rows >= 0).all()
        distances[use] = ((queries[:, None, :] / 0.8 - data[rows]) ** 2).sum(2).sort(1).values
    assert torch.allclose(distances[True], distances[False], atol=1e-5)


@pytest.mark.parametrize("num_centroids,count,dim", [(92, 2, 147), (3000, 5, 20), (40, 20, 7), (16, 16, 33), (6, 2, 33),
                                                      (250, 1, 64)])
def test_nearest_centroids_are_the_nearest_with_and_without_the_scan(path, monkeypatch, num_centroids, count, dim):
    """The probe and k-means rank centroids in one call of the list scan where it serves: the whole set as
    one list, longer than a chunk (3,000), k past the vector width (20), every centroid (16 of 16); fewer
    than 16 centroids stay on the product. The centroids chosen are the truly nearest, in order, on the
    kernel and on the matrix-product fallback."""
    g = torch.Generator().manual_seed(num_centroids + count)
    num_points = max(700, -(-kmeans.SCAN_MIN_SCORES // num_centroids))  # enough scores for the scan to serve
    centroids, points = torch.randn(num_centroids, dim, generator=g), torch.randn(num_points, dim, generator=g)
    scans = []
    monkeypatch.setattr(kmeans, "scan_top_k", lambda *args: scans.append(1) or scan_top_k(*args))
    found = nearest_centroids(points, centroids, count)
    assert len(scans) == (path == "native" and num_centroids >= kmeans.SCAN_MIN_CENTROIDS)
    distances = torch.cdist(points.double(), centroids.double())
    expected = distances.topk(count, dim=1, largest=False)
    assert found.shape == (num_points, count)
    torch.testing.assert_close(distances.gather(1, found), expected.values, rtol=0, atol=1e-5)
    assert (found == expected.indices).float().mean() > 0.999  # the same rows, up to near-ties


@pytest.mark.parametrize("dim", [1, 15, 16, 63, 64, 65, 300])
@pytest.mark.parametrize("width", [1, 6])
def test_shortlist_scores_are_the_scores_of_the_rows_named(kernels, monkeypatch, dim, width):
    monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name))
    g = torch.Generator().manual_seed(dim * 10 + width)
    x, table, bias = torch.randn(37, dim, generator=g), torch.randn(50, dim, generator=g), torch.randn(50, generator=g)
    rows = torch.randint(50, (37, width), generator=g)
    expected = 1.5 * torch.einsum("qd,qrd->qr", x.double(), table.double()[rows]) + bias.double()[rows]
    torch.testing.assert_close(shortlist.score_candidates(x, table, bias, rows, 1.5).double(), expected,
                               atol=1e-4, rtol=1e-5)


def paired_centroids(pairs=30, dim=300, seed=0):
    """Centroids in pairs (b, b + δ) with ‖δ‖ = 0.1, the pairs far apart, and points within 1e-4 of a pair's
    b: the point's two nearest are its pair, b first by ‖δ‖² = 0.01 in the score, which float32 resolves
    and the rounding of bf16 products (about 0.02 on scores near 100) does not."""
    g = torch.Generator().manual_seed(seed)
    bases = torch.rand(pairs, dim, generator=g)
    nudge = torch.randn(pairs, dim, generator=g)
    centroids = torch.stack([bases, bases + 0.1 * nudge / nudge.norm(dim=1, keepdim=True)], 1).reshape(2 * pairs, dim)
    points = bases[torch.randint(pairs, (500,), generator=g)] + 1e-4 * torch.randn(500, dim, generator=g)
    return points, centroids


def test_the_bf16_shortlist_keeps_the_float32_order_of_lists_that_nearly_tie(kernels, monkeypatch):
    if getattr(getattr(torch.backends.mkldnn, "matmul", None), "fp32_precision", None) is None:
        pytest.skip("this torch cannot switch its float32 products to bf16")
    monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name))
    points, centroids = paired_centroids()
    expected = nearest_centroids(points, centroids, 2)
    assert torch.equal(expected[:, 0] % 2, torch.zeros(500, dtype=torch.int64))  # b first, by float32
    found = shortlist.nearest_by_shortlist(points, centroids, -(centroids ** 2).sum(1), 2)
    assert torch.equal(found, expected)  # the same two lists, in the same order


def test_the_probe_through_the_shortlist_is_the_float32_probe(kernels, monkeypatch):
    """Where the shortlist serves (a CPU with AMX or AVX-512 BF16), a top-k index over real patches probes as
    in float32."""
    monkeypatch.setattr(native, "kernel", lambda name: getattr(kernels, name))
    image = sidlite.example_image("chelsea", max_side=128)
    data = extract_patches(image, 11, 1)  # D = 363
    backend = make_backend("topk", data)
    if not shortlist.shortlist_serves(data, backend.nlist, 2):
        pytest.skip("the bf16 shortlist does not serve on this CPU")
    calls = []
    monkeypatch.setattr(kmeans, "nearest_by_shortlist", lambda *args: calls.append(1) or shortlist.nearest_by_shortlist(*args))
    g = torch.Generator().manual_seed(0)
    for alpha, sigma in ((0.3, 0.95), (0.9, 0.4), (0.999, 0.05)):
        x = extract_patches(alpha * image + sigma * torch.randn(image.shape, generator=g), 11, 1)
        through = backend.probe(x, alpha)
        monkeypatch.setenv("SIDLITE_BF16_PROBE", "0")
        plain = backend.probe(x, alpha)
        monkeypatch.delenv("SIDLITE_BF16_PROBE")
        assert (through.sort(1).values == plain.sort(1).values).all(1).float().mean() > 0.999
    assert len(calls) == 3  # each probe went through the shortlist
