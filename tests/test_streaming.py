"""Bounded-memory generation: patch sets, streamed bands, blocked datasets, the per-level plan, big outputs."""
import math

import numpy as np
import pytest
import torch
from PIL import Image

import sidlite
from sidlite import SidliteError, naive_denoise
from sidlite.backends import AttentionBackend, ExactBackend, TopKBackend, make_backend, parse_backend
from sidlite.backends.clustered import compiled_list_scan
from sidlite.cli import main
from sidlite.denoiser import ImageDenoiser, known_patch_grid
from sidlite.large_output import check_disk_space, save_result, write_png_rows
from sidlite.apps.generate import generation_model
from sidlite.model import SingleImageModel
from sidlite.patches import extract_patches, fold_patches, gaussian_window
from sidlite.patchsets import DensePatchSet, ImagePatchSet
from sidlite.plan import compact_index, default_nprobe, plan_levels
from sidlite.pyramid import resize
from sidlite.runtime import format_bytes, parse_bytes


def image(c=3, h=30, w=41, seed=0):
    return torch.rand(c, h, w, generator=torch.Generator().manual_seed(seed)) * 2 - 1


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_image_patch_set_equals_the_extracted_matrix(stride):
    img = image()
    dense = extract_patches(img, 5, stride)
    patches = ImagePatchSet(img, 5, stride)
    assert patches.size == dense.shape[0] and patches.dim == dense.shape[1]
    rows = torch.randint(0, dense.shape[0], (64,), generator=torch.Generator().manual_seed(1))
    assert torch.equal(patches.gather(rows), dense[rows])
    assert torch.equal(torch.cat([block for _, block in patches.chunks(37)]), dense)
    torch.testing.assert_close(patches.mean(), dense.double().mean(0).float(), atol=1e-6, rtol=0)
    torch.testing.assert_close(patches.sq_norms(), (dense.double() ** 2).sum(1).float(), atol=1e-4, rtol=1e-6)


def test_keep_mask_selects_the_patches_inside_the_known_region():
    img = image()
    known = torch.ones(30, 41, dtype=torch.bool)
    known[10:20, 12:30] = False
    grid = known_patch_grid(known, 5)
    inside = extract_patches(known[None].float(), 5).amin(1) > 0  # the definition, the slow way
    assert torch.equal(grid.reshape(-1), inside)
    patches = ImagePatchSet(img, 5, keep=grid)
    assert torch.equal(patches.dense(), extract_patches(img, 5)[inside])


def fold_to_the_edges(backend, x, p, stride, rho, alpha=0.7, sigma=0.5):
    """The whole-image fold, patch by patch, over the grid at ``stride`` plus a last row and column of patches
    flush with the bottom and right edges where the grid stops short of them."""
    channels, height, width = x.shape
    rows = sorted(set(range(0, height - p + 1, stride)) | {height - p})
    cols = sorted(set(range(0, width - p + 1, stride)) | {width - p})
    queries = torch.stack([x[:, r:r + p, c:c + p].reshape(-1) for r in rows for c in cols])
    estimates = backend.denoise(queries, alpha, sigma).view(len(rows), len(cols), channels, p, p)
    window = gaussian_window(p, rho)
    numerator, coverage = torch.zeros_like(x), torch.zeros(height, width)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            numerator[:, r:r + p, c:c + p] += window * estimates[i, j]
            coverage[r:r + p, c:c + p] += window
    return numerator / coverage


@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("rho", [0.2, math.inf])
def test_streamed_bands_equal_the_whole_image_fold_to_the_edges(stride, rho, logit_rounding):
    # 37 x 30 with P = 5: stride 2 stops one column short of the right edge, stride 3 two rows short of the
    # bottom and one column short of the right; the denoiser adds patches flush with those edges
    source, x = image(seed=1), image(h=37, w=30, seed=2)
    denoiser = ImageDenoiser(source, 5, "attention", rho, query_stride=stride)
    whole = fold_to_the_edges(denoiser.backend, x, 5, stride, rho)
    # SDPA blocks a band's queries differently from the whole image's, which rounds each logit differently.
    largest_logit = 0.7 / 0.5 ** 2 * float(extract_patches(x, 5).abs().sum(1).max() * source.abs().max())
    rounding = logit_rounding(largest_logit, float(source.abs().max()))
    for band_rows in (1, 2, 5, 1000):
        denoiser.band_rows = band_rows
        torch.testing.assert_close(denoiser(x, 0.7, 0.5), whole, atol=rounding, rtol=0)


def test_a_window_whose_edge_weights_underflow_gives_no_nan():
    source = image(seed=3)
    for stride in (1, 2):
        out = ImageDenoiser(source, 5, "attention", 0.05, query_stride=stride)(image(h=24, w=23, seed=4), 1.0, 0.1)
        assert bool(torch.isfinite(out).all())


def test_a_query_stride_larger_than_the_patch_is_refused():
    from sidlite.plan import plan_levels

    with pytest.raises(SidliteError, match="query stride .* from 1 to the patch size 5"):
        ImageDenoiser(image(), 5, query_stride=6)
    with pytest.raises(SidliteError, match="from 1 to the patch size 7, got 8"):
        plan_levels([(64, 64)], [(64, 64)], 3, 7, query_stride=8)
    plan_levels([(64, 64)], [(64, 64)], 3, 7, query_stride=7)  # as large as the patch: every pixel covered


def test_band_height_follows_the_memory_budget():
    denoiser = ImageDenoiser(image(), 5, memory_budget="1MB")
    per_row = denoiser.bytes_per_grid_row(200)
    assert denoiser.rows_per_band(400, 200) == max(1, 2 ** 20 // per_row)
    assert ImageDenoiser(image(), 5, memory_budget="1GB").rows_per_band(400, 200) == 396  # every row at once


@pytest.mark.parametrize("cls", [ExactBackend, AttentionBackend])
@pytest.mark.parametrize("alpha,sigma", [(0.3, 1.0), (0.8, 0.3), (1.0, 1e-3)])
def test_blocked_datasets_merge_to_the_one_softmax(cls, alpha, sigma):
    patches = ImagePatchSet(image(h=24, w=31), 5)
    y = patches.dense()
    g = torch.Generator().manual_seed(3)
    x = alpha * y[torch.randint(0, y.shape[0], (150,), generator=g)] + sigma * torch.randn(150, y.shape[1], generator=g)
    reference = naive_denoise(x.double().numpy(), y.double().numpy(), alpha, sigma)
    backend = cls(patches, dataset_chunk=97)
    assert backend.block == 97
    np.testing.assert_allclose(backend.denoise(x, alpha, sigma).numpy(), reference, atol=2e-5, rtol=0)


def test_backends_accept_patch_sets_and_tensors_alike():
    img = image(h=26, w=26)
    x = torch.randn(40, 75, generator=torch.Generator().manual_seed(4))
    for name in ("exact", "attention", "topk", "clustered", "naive"):
        a = make_backend(name, ImagePatchSet(img, 5)).denoise(x, 0.9, 0.2)
        b = make_backend(name, extract_patches(img, 5)).denoise(x, 0.9, 0.2)
        torch.testing.assert_close(a, b, atol=1e-6, rtol=0)
    assert isinstance(TopKBackend(DensePatchSet(extract_patches(img, 5))).patches, DensePatchSet)


def test_backend_specs_are_typed_and_checked():
    spec = parse_backend("topk:k=3,nprobe=4")
    assert spec.name == "topk" and spec.options == {"k": 3, "nprobe": 4}
    assert parse_backend("clustered:split_above=none").options == {"split_above": None}
    assert parse_backend("auto:nprobe=4").options_for("attention", sidlite.BACKENDS) == {}
    for bad, message in [("topk:kk=3", "valid options"), ("auto:max_scores=9", "no option"),
                         ("topk:k=x", "whole number"), ("warp", "unknown backend"), ("topk:k", "key=value")]:
        with pytest.raises(SidliteError, match=message):
            parse_backend(bad)


def test_generate_takes_options_auto_cannot_pass_to_every_level():
    img = sidlite.example_image("chelsea", 64)
    # nprobe reaches top-k levels and is left out of exact ones (a TypeError before the spec)
    out = sidlite.generate(img, size=(40, 120), patch_size=7, nprobe=4, steps=2, progress=False)
    assert out.shape == (1, 3, 40, 120)
    with pytest.raises(SidliteError, match="no option 'kk'"):
        sidlite.generate(img, patch_size=7, kk=3, progress=False)


def test_plan_resolves_every_level_and_refuses_what_cannot_fit():
    model = SingleImageModel(image(h=64, w=64), 7, output_size=(96, 160), memory_budget="2GB", backend="topk:nprobe=3")
    plan = model.plan
    assert [p.output_shape for p in plan.levels] == model.sample_shapes
    assert all(p.backend == "topk" and p.options == {"nprobe": 3} for p in plan.levels)
    assert plan.peak <= plan.budget
    table = plan.table()
    assert "96x160" in table and "topk:nprobe=3" in table
    with pytest.raises(SidliteError, match="memory budget"):
        plan_levels([(64, 64)], [(20000, 20000)], 3, 7, device="cpu", memory_budget="1GB").check()


def test_auto_query_stride_follows_the_papers_resolver():
    plan = plan_levels([(64, 64)], [(4000, 3000)], 16, 7, memory_budget="100GB")
    assert plan.levels[0].query_stride == 2  # 11.9M query positions > 8M
    plan = plan_levels([(64, 64)], [(2000, 3000)], 16, 7, memory_budget="100GB")
    assert plan.levels[0].query_stride == 1
    assert plan_levels([(64, 64)], [(4096, 4096)], 3, 1, memory_budget="100GB").levels[0].query_stride == 1  # P = 1


def test_kept_levels_count_every_index_at_every_level():
    shapes_in, shapes_out = [(256, 256), (128, 128), (64, 64)], [(256, 256), (128, 128), (64, 64)]
    single = plan_levels(shapes_in, shapes_out, 3, 5, "topk", memory_budget="8GB")
    kept = plan_levels(shapes_in, shapes_out, 3, 5, "topk", memory_budget="8GB", keep_levels=True)
    every = sum(level.index_bytes for level in single.levels)
    assert [level.index_bytes for level in kept.levels] == [every] * 3  # the finest level too, not its own alone


def test_levels_are_built_lazily_and_released_unless_kept(small_image):
    model = SingleImageModel(small_image, 5, keep_levels=False)
    assert not model.denoisers._built
    first = model.denoisers[0]
    assert model.denoisers[0] is first
    model.denoisers[1]
    assert list(model.denoisers._built) == [1]  # only the level asked for last is held
    kept = SingleImageModel(small_image, 5)
    kept.denoisers[0], kept.denoisers[1]
    assert sorted(kept.denoisers._built) == [0, 1]


def test_a_small_budget_gives_the_same_sample_as_a_large_one(small_image):
    one_band = SingleImageModel(small_image, 5, memory_budget="4GB").sample(seed=1, steps=3, progress=False).image
    narrow = SingleImageModel(small_image, 5, memory_budget="2400KB", keep_levels=False)  # one index at a time
    assert narrow.plan.levels[0].bands > 1
    torch.testing.assert_close(narrow.sample(seed=1, steps=3, progress=False).image, one_band, atol=1e-4, rtol=0)


def test_resize_in_blocks_equals_one_pass(monkeypatch):
    import sidlite.pyramid as pyramid

    img = image(c=2, h=61, w=47)
    sizes = [(30, 24), (122, 94), (17, 90)]
    whole = [resize(img, size) for size in sizes]
    monkeypatch.setattr(pyramid, "GATHER_BLOCK_VALUES", 300)  # a few rows per block
    for size, expected in zip(sizes, whole):
        assert torch.equal(resize(img, size), expected)


def test_streamed_png_reads_back_pixel_for_pixel(tmp_path):
    g = np.random.default_rng(0)
    pixels = g.integers(0, 256, (53, 31, 3), dtype=np.uint8)
    path = write_png_rows(tmp_path / "s.png", 53, 31, iter([pixels[:20], pixels[20:21], pixels[21:]]))
    with Image.open(path) as handle:
        assert np.array_equal(np.asarray(handle.convert("RGB")), pixels)
    with pytest.raises(SidliteError, match="rows"):
        write_png_rows(tmp_path / "t.png", 54, 31, iter([pixels]))


def test_large_results_stream_to_png_with_a_preview(tmp_path, monkeypatch):
    import sidlite.large_output as large

    img = sidlite.example_image("astronaut", 128)
    codec = sidlite.get_codec("pca", img)
    latent = codec.encode(img)
    monkeypatch.setattr(large, "STREAM_ABOVE_PIXELS", 1000)
    written = save_result(codec, latent, tmp_path / "big.jpg", preview_long_side=50)
    assert [p.name for p in written] == ["big.png", "big_preview.jpg"]
    expected = sidlite.image_io.to_uint8(codec.decode(latent))
    with Image.open(written[0]) as handle:
        assert np.array_equal(np.asarray(handle), expected)
    with Image.open(written[1]) as handle:
        assert max(handle.size) <= 50
    with pytest.raises(SidliteError, match="already exists"):
        save_result(codec, latent, tmp_path / "big.png")


@pytest.mark.parametrize("codec_spec, channels", [("pca", 3), ("pixels", 1)])
def test_results_decode_band_by_band_into_the_same_pixels(tmp_path, monkeypatch, codec_spec, channels):
    import sidlite.large_output as large

    img = sidlite.example_image("astronaut", 64)[:channels]
    codec = sidlite.get_codec(codec_spec, img)
    latent = codec.encode(img)
    monkeypatch.setattr(large, "band_cells_for", lambda codec, width, shrink=1: 3)  # many bands, the last short
    written = save_result(codec, latent, tmp_path / "small.png")
    assert [p.name for p in written] == ["small.png"]
    with Image.open(written[0]) as handle:
        assert np.array_equal(np.asarray(handle), sidlite.image_io.to_uint8(codec.decode(latent)))


def test_disk_space_is_checked_before_sampling(tmp_path):
    check_disk_space(tmp_path / "a.png", 100, 100)
    with pytest.raises(SidliteError, match="on disk"):
        check_disk_space(tmp_path / "a.png", 2 ** 30, 2 ** 30)


def test_saving_the_output_is_planned_before_sampling():
    from sidlite.large_output import plan_saving, save_bytes
    from sidlite.plan import plan_levels

    pca = sidlite.get_codec("pca", sidlite.example_image("gravel", 64))
    plan = plan_levels([(64, 64)], [(64, 64)], 3, 7, memory_budget="180MB")
    assert plan_saving(plan, pca, 512, 512) is False  # saved whole through Pillow
    assert plan_saving(plan, pca, 4096, 4096) is True  # its 8-bit copies would crowd the budget: streamed
    assert save_bytes(pca, 4096, 4096) > plan.budget > save_bytes(pca, 4096, 4096, streamed=True)
    tight = plan_levels([(64, 64)], [(64, 64)], 3, 7, memory_budget="90MB")
    with pytest.raises(SidliteError, match="saving the 4096x4096 output .* raise `memory_budget`"):
        plan_saving(tight, pca, 4096, 4096)
    # a codec that decodes whole (a VAE) holds the whole float image; a wide streamed output rounds its bands
    # up to whole preview rows (14336 x 70080 with 8-pixel cells: 35 cells, 280 pixel rows a band)
    whole = type("Whole", (), {"blockwise": False, "cell_size": 8})()
    assert save_bytes(whole, 4096, 4096, streamed=True) > 3 * 4 * 3 * 4096 ** 2
    assert save_bytes(pca, 14336, 70080, streamed=True) > 3 * 4 * 3 * 280 * 70080


def test_streamed_outputs_refuse_to_replace_their_png_and_write_grayscale(tmp_path):
    gray = sidlite.example_image("gravel", 32)[:1]
    codec = sidlite.get_codec("pixels", gray)
    (tmp_path / "g.png").write_bytes(b"the user's file")
    with pytest.raises(SidliteError, match="already exists"):
        save_result(codec, gray, tmp_path / "g.jpg", streamed=True)  # streamed outputs are PNG: g.png is taken
    assert (tmp_path / "g.png").read_bytes() == b"the user's file"
    written = save_result(codec, gray, tmp_path / "h.png", streamed=True, preview_long_side=16)
    with Image.open(written[0]) as handle:
        assert handle.mode == "L" and np.array_equal(np.asarray(handle), sidlite.image_io.to_uint8(gray))


def test_sizes_and_budgets_are_checked():
    assert parse_bytes("8GB") == 8 * 2 ** 30 and parse_bytes("512 MB") == 512 * 2 ** 20 and parse_bytes(1000) == 1000
    assert format_bytes(3 * 2 ** 30) == "3.0 GB"
    for bad in ("lots", "-1GB", "5 parsecs"):
        with pytest.raises(SidliteError):
            parse_bytes(bad)
    with pytest.raises(SidliteError, match="at most"):
        sidlite.generate(image(), size=(2 ** 31, 10))


def test_cli_plan_prints_the_table_and_samples_nothing(tmp_path, capsys):
    out = tmp_path / "big.png"
    assert main(["generate", "example:astronaut", "-o", str(out), "--latent", "pca", "--size", "32768", "32768",
                 "--plan", "--memory-budget", "64GB"]) == 0
    printed = capsys.readouterr().out
    assert "4096x4096" in printed and "topk" in printed and not out.exists()
    assert main(["generate", "example:astronaut", "-o", str(out), "--latent", "pca", "--size", "32768", "32768",
                 "--memory-budget", "1GB"]) == 2
    err = capsys.readouterr().err
    assert "--memory-budget" in err and err.count("\n") == 1
    assert main(["generate", "example:dots", "-o", str(out), "--backend", "topk:kk=2", "--plan"]) == 2
    assert "valid options" in capsys.readouterr().err


def test_generation_model_matches_generate():
    img = sidlite.example_image("chelsea", 64)
    codec, model = generation_model(img, patch_size=7, seed=2, steps=3, progress=False)
    direct = sidlite.generate(img, patch_size=7, seed=2, steps=3, progress=False)[0]
    assert torch.equal(codec.decode(model.sample().image), direct)


def test_ranking_in_a_projection_stores_no_full_copy_and_is_exact_at_full_rank():
    patches = ImagePatchSet(sidlite.example_image("chelsea", 48), 5)
    g = torch.Generator().manual_seed(5)
    y = patches.gather(torch.randint(0, patches.size, (200,), generator=g))
    x = 0.9 * y + 0.1 * torch.randn(y.shape, generator=g)
    full = TopKBackend(patches)
    complete = TopKBackend(patches, rank_dim=patches.dim)  # a complete basis: the same ranking
    agree = (complete.neighbours(x, 0.9) == full.neighbours(x, 0.9)).float().mean()
    assert agree > 0.99
    torch.testing.assert_close(complete.denoise(x, 0.9, 0.1), full.denoise(x, 0.9, 0.1), atol=1e-4, rtol=0)
    compact = TopKBackend(patches, rank_dim=8)
    assert compact.sorted.shape == (patches.size, 8)  # r numbers per patch in the index, not D
    found = compact.neighbours(x, 0.9)
    recall = np.mean([len(set(a.tolist()) & set(b.tolist())) / 5 for a, b in zip(found, full.neighbours(x, 0.9))])
    assert recall > 0.5
    # the winners are weighted exactly: as σ → 0 the output is the candidate truly nearest to x/α
    candidates = patches.gather(found.reshape(-1)).view(*found.shape, -1)
    truly_nearest = ((candidates - x[:, None] / 0.9) ** 2).sum(-1).argmin(1)
    expected = candidates[torch.arange(found.shape[0]), truly_nearest]
    torch.testing.assert_close(compact.denoise(x, 0.9, 1e-4), expected, atol=1e-3, rtol=0)


def test_plan_ranks_in_a_projection_when_the_full_index_would_crowd_the_budget():
    def finest(budget):
        return plan_levels([(400, 400)], [(400, 400)], 3, 15, "topk", memory_budget=budget).levels[0]

    roomy, snug, tight = finest("64GB"), finest("1.25GB"), finest("200MB")
    # the most dimensions whose index fits a quarter of the budget, else the fewest
    assert "rank_dim" not in roomy.options and snug.options["rank_dim"] == 64 and tight.options["rank_dim"] == 32
    assert snug.index_bytes <= 0.25 * 1.25 * 2 ** 30 < roomy.index_bytes
    # the projection saves most of the (N, D) copy the full index holds (its PCA fit costs a little back)
    assert roomy.index_bytes - tight.index_bytes > 0.7 * roomy.patches * 4 * (roomy.dim - 32)


def test_a_projection_that_would_not_shrink_the_index_is_not_taken():
    # few patches, many queries, the score table of the path without the compiled scan: mostly scratch
    full = TopKBackend.estimate(3364, 784, 62500, nprobe=8)
    assert full["index_bytes"] > 4 * 3364 * 784 * 2  # the scratch outweighs the (N, D) copy
    options, cost = compact_index(3364, 784, 62500, {"nprobe": 8}, full, share=1.0, compiled_scan=False)
    assert options == {"nprobe": 8} and cost is full
    # where the projection does shrink it, the smallest index is taken when none fits
    options, _ = compact_index(150_000, 675, 150_000, {}, TopKBackend.estimate(150_000, 675, 150_000),
                               share=1.0, compiled_scan=False)
    assert options == {"rank_dim": 32}


def test_the_compiled_scan_plans_its_chunks_not_a_score_table():
    def scratch(queries, compiled_scan):
        return TopKBackend.estimate(3364, 784, queries, nprobe=8, compiled_scan=compiled_scan)["index_bytes"]

    # both past the probe's chunk of queries: the table still grows with the pairs, the chunks do not
    assert scratch(62500, False) > scratch(31250, False) and scratch(31250, True) == scratch(62500, True)


def test_the_plan_counts_the_compiled_scan_only_where_it_runs():
    assert not compiled_list_scan("cpu", k=5, scan="batched") and not compiled_list_scan("cpu", k=1000)
    if compiled_list_scan("cpu"):  # the kernels are built here: top-k with k = 5 uses the compiled scan
        patches = ImagePatchSet(image(h=40, w=52), 5)
        assert TopKBackend(patches).compiled_scan and not TopKBackend(patches, scan="batched").compiled_scan


def test_top_k_probes_more_lists_as_the_output_outgrows_its_input():
    assert [default_nprobe(positions, 1000) for positions in (500, 1000, 1500, 2000, 4000, 40000)] == [2, 2, 3, 4, 8, 8]

    def finest(output, backend="auto"):
        return plan_levels([(200, 200)], [output], 3, 7, backend, memory_budget="8GB").levels[0]

    assert finest((200, 200)).options["nprobe"] == 2  # the paper's pixel setting at the input's size
    assert finest((400, 400)).options["nprobe"] == 8  # 4.1 output positions per input patch
    assert finest((400, 400), "topk:nprobe=3").options["nprobe"] == 3  # a given count is kept
    assert finest((400, 400), "auto:nprobe=2").options["nprobe"] == 2


cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


@cuda
@pytest.mark.parametrize("cls", [ExactBackend, AttentionBackend])
def test_cuda_blocked_datasets_merge_to_the_one_softmax(cls):
    patches = ImagePatchSet(image(h=40, w=52).cuda(), 5)
    y = patches.dense()
    g = torch.Generator(device="cuda").manual_seed(3)
    x = 0.6 * y[torch.randint(0, y.shape[0], (300,), generator=g, device="cuda")] + 0.5 * torch.randn(300, y.shape[1], generator=g, device="cuda")
    reference = naive_denoise(x.double().cpu().numpy(), y.double().cpu().numpy(), 0.6, 0.5)
    np.testing.assert_allclose(cls(patches, dataset_chunk=333).denoise(x, 0.6, 0.5).cpu().numpy(), reference, atol=1e-4, rtol=0)


@cuda
def test_cuda_streamed_bands_equal_the_whole_image_fold():
    source, x = image(seed=1).cuda(), image(h=37, w=29, seed=2).cuda()
    denoiser = ImageDenoiser(source, 5, "topk:rank_dim=16", 0.2, query_stride=2)
    whole = fold_patches(denoiser.backend.denoise(extract_patches(x, 5, 2), 0.7, 0.5), tuple(x.shape), 5, 2, 0.2)
    denoiser.band_rows = 3
    torch.testing.assert_close(denoiser(x, 0.7, 0.5), whole, atol=2e-5, rtol=0)


@cuda
def test_cuda_plan_and_small_budget_sample():
    model = SingleImageModel(image(h=64, w=64).cuda(), 5, device="cuda", memory_budget="64MB")
    assert model.plan.device.startswith("cuda") and model.plan.peak <= model.plan.budget
    assert model.sample(seed=0, steps=2, progress=False).image.is_cuda


@pytest.mark.parametrize("rank_dim", [None, 6])
@pytest.mark.parametrize("n_side,nprobe", [(9, 3), (30, 2)])  # 9: lists smaller than k
def test_batched_list_scan_finds_the_same_candidates_as_the_loop(rank_dim, n_side, nprobe):
    patches = ImagePatchSet(image(h=n_side + 4, w=n_side + 6, seed=7), 5)
    g = torch.Generator().manual_seed(8)
    y = patches.gather(torch.randint(0, patches.size, (300,), generator=g))
    x = 0.8 * y + 0.3 * torch.randn(y.shape, generator=g)
    loop = TopKBackend(patches, nprobe=nprobe, rank_dim=rank_dim, scan="loop")
    batched = TopKBackend(patches, nprobe=nprobe, rank_dim=rank_dim, scan="batched")
    assert torch.equal(loop.neighbours(x, 0.8), batched.neighbours(x, 0.8))
    torch.testing.assert_close(batched.denoise(x, 0.8, 0.3), loop.denoise(x, 0.8, 0.3), atol=1e-4, rtol=0)


@pytest.mark.parametrize("backend", ["exact", "topk:nlist=8"])
def test_a_batch_of_images_is_denoised_as_each_alone(backend):
    """(B, C, H, W) queries meet the backend together and are cut into 1/B as many rows per band."""
    denoiser = ImageDenoiser(image(), 5, backend, band_rows=6)
    noisy = torch.stack([0.8 * image(seed=s) + 0.6 * torch.randn(3, 30, 41, generator=torch.Generator().manual_seed(s))
                         for s in (1, 2, 3)])
    together = denoiser(noisy, 0.8, 0.6)
    assert together.shape == noisy.shape
    for i in range(3):
        assert torch.allclose(together[i], denoiser(noisy[i], 0.8, 0.6), atol=1e-5)
    with pytest.raises(SidliteError, match="batch"):
        denoiser(noisy[:, :2], 0.8, 0.6)


def test_auto_leaves_exact_attention_for_top_k_where_its_keys_crowd_the_budget():
    """Few queries over many patches (a stride of 15 over 43,676 patches): 'auto' takes exact attention for its
    speed, but its padded keys and values are 235 MB; under 100 MB the top-k index fits where they did not."""
    from sidlite.plan import plan_levels

    shapes = [(193, 258)]
    roomy = plan_levels(shapes, shapes, 3, 15, query_stride=15, memory_budget="1GB").check().levels[0]
    tight = plan_levels(shapes, shapes, 3, 15, query_stride=15, memory_budget="100MB").check().levels[0]
    assert roomy.backend == "attention" and tight.backend == "topk"
    assert tight.memory <= 100 * 2 ** 20 < roomy.index_bytes
    with pytest.raises(SidliteError, match="memory budget"):  # asked for by name, attention is kept and refused
        plan_levels(shapes, shapes, 3, 15, "attention", query_stride=15, memory_budget="100MB").check()
