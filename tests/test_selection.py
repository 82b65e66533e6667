"""Row-wise top-k (sidlite.backends.selection): the compiled kernel against torch.topk, and the fallback."""
import pytest
import torch

from sidlite.backends import selection
from sidlite.backends.selection import top_k_rows


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """The kernel built afresh into an empty cache folder (skips where this machine cannot build it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SIDLITE_CACHE", str(tmp_path_factory.mktemp("cache")))
        selection.native_kernel.cache_clear()
        built = selection.native_kernel()
    if built is None:
        pytest.skip("no C compiler with OpenMP here: the torch.topk fallback serves")
    return built


@pytest.fixture(params=["native", "fallback"])
def path(request, kernel, monkeypatch):
    """Each test runs on the kernel and on the torch.topk fallback."""
    monkeypatch.setattr(selection, "native_kernel", lambda: kernel if request.param == "native" else None)
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


def test_non_contiguous_and_other_dtypes_fall_back_to_torch(kernel, monkeypatch):
    calls = []
    monkeypatch.setattr(selection, "native_kernel", lambda: calls.append(1) or kernel)
    scores = torch.randn(50, 64, dtype=torch.float64)
    values, _ = top_k_rows(scores, 5)
    assert torch.equal(values, scores.topk(5, dim=1).values) and not calls
    transposed = torch.randn(64, 50).T  # rows not contiguous
    assert torch.equal(top_k_rows(transposed, 3)[0], transposed.topk(3, dim=1).values) and not calls


def test_switched_off_or_without_a_compiler_there_is_no_kernel(monkeypatch, tmp_path):
    monkeypatch.setenv("SIDLITE_CACHE", str(tmp_path))
    for setting in ({"SIDLITE_NATIVE": "0"}, {"CC": str(tmp_path / "no-such-compiler")}):
        with monkeypatch.context() as patch:
            for name, value in setting.items():
                patch.setenv(name, value)
            selection.native_kernel.cache_clear()
            assert selection.native_kernel() is None
    selection.native_kernel.cache_clear()
    assert not list(tmp_path.glob("*.so"))  # nothing half-built is left behind
