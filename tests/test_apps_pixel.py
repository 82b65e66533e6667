"""The pixel applications keep the property each one promises: retargeting, tileable, symmetric,
inpainting/outpainting, editing/harmonization and super-resolution. Small images, few steps."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

import sidlite
from sidlite.apps._shared import region_pyramid
from sidlite.apps.tileable import shift_masks
from sidlite.cli import main
from sidlite.codecs import Codec
from sidlite.errors import SidliteError
from sidlite.metrics import nearest_patches, seam_error, symmetry_error
from sidlite.patches import extract_patches
from sidlite.pyramid import resize

FAST = dict(patch_size=5, steps=4, progress=False)


@pytest.fixture(scope="module")
def cat():
    return sidlite.example_image("chelsea", 48)


class SpaceToDepth(Codec):
    """A lossless blockwise 'latent': 2×2 pixel blocks become 12 channels (a stand-in for the pca codec)."""

    name, cell_size = "space-to-depth", 2

    def encode(self, image):
        return torch.nn.functional.pixel_unshuffle(image[None], 2)[0]

    def decode(self, latent):
        return torch.nn.functional.pixel_shuffle(latent[None], 2)[0]


# ---------------------------------------------------------------- retargeting

def test_retarget_size_and_proportions(cat):
    height, width = cat.shape[1:]
    for size in ((height, 2 * width), (height + 10, round(width * 0.6))):
        out = sidlite.retarget(cat, size, patch_size=7, steps=4, progress=False)
        assert out.shape == (3, *size)
        stretched = resize(cat, size)
        # Unstretched patches: every output patch is closer to an input patch than a plain stretch's are.
        assert sidlite.coherence(out, cat, 5) < 0.8 * sidlite.coherence(stretched, cat, 5)


def test_retarget_same_seed_same_image(cat):
    size = (cat.shape[1], cat.shape[2] + 12)
    assert torch.equal(sidlite.retarget(cat, size, seed=3, **FAST), sidlite.retarget(cat, size, seed=3, **FAST))


def test_retarget_rejects_bad_size(cat):
    with pytest.raises(SidliteError, match="two positive integers"):
        sidlite.retarget(cat, (0, 40), **FAST)


# ---------------------------------------------------------------- tileable

@pytest.mark.parametrize("direction,num_shifts", [("both", 4), ("both", 3), ("horizontal", 4), ("vertical", 4)])
def test_shift_masks_cover_every_pixel(direction, num_shifts):
    layout = shift_masks(10, 14, direction, num_shifts)
    total = sum(mask for _, mask in layout)
    assert total.min() >= 1
    if num_shifts == 4 or direction != "both":
        assert torch.equal(total, torch.ones(10, 14))  # a hard partition
    else:
        assert total.max() == 2 and total[0, 0] == 2  # 3 shifts: the corners average two rolls


@pytest.mark.parametrize("num_shifts", [4, 3])
def test_tileable_has_no_seam(num_shifts):
    texture = sidlite.example_image("gravel", 40)
    out = sidlite.tileable(texture, num_shifts=num_shifts, **FAST)
    plain = sidlite.generate(texture, patch_size=5, steps=4, eta=1.0, seed=0, progress=False)[0]
    for dim in (-1, -2):
        seam = float((out.narrow(dim, 0, 1) - out.narrow(dim, -1, 1)).abs().mean())
        interior = out.diff(dim=dim).abs().movedim(dim, 0).flatten(1).mean(1)
        assert seam <= float(interior.max())  # the wrap-around step is no larger than the steps inside
    assert seam_error(out) < 0.5 * seam_error(plain)


def test_tile_preview_repeats(cat):
    grid = sidlite.tile_preview(cat, 2, 3)
    assert grid.shape == (3, 2 * cat.shape[1], 3 * cat.shape[2])
    assert torch.equal(grid[:, cat.shape[1]:, 2 * cat.shape[2]:], cat)


def test_tileable_in_a_blockwise_latent():
    texture = sidlite.example_image("gravel", 40)
    out = sidlite.tileable(texture, latent=SpaceToDepth(), patch_size=3, steps=4, progress=False)
    assert out.shape == texture.shape
    plain = sidlite.generate(texture, patch_size=3, steps=4, eta=1.0, seed=0, latent=SpaceToDepth(), progress=False)[0]
    assert seam_error(out) < seam_error(plain)


def test_tileable_in_the_pca_latent_when_available():
    texture = sidlite.example_image("gravel", 64)
    try:
        sidlite.get_codec("pca")
    except SidliteError:
        pytest.skip("the weight-free 'pca' codec is not in this build")
    out = sidlite.tileable(texture, latent="pca", patch_size=3, steps=4, progress=False)
    assert out.shape[0] == 3 and out.shape[1] % 8 == 0


# ---------------------------------------------------------------- symmetric

@pytest.mark.parametrize("axis,source", [("horizontal", "left"), ("horizontal", "right"), ("vertical", "bottom")])
def test_symmetric_is_exact(cat, axis, source):
    out = sidlite.symmetric(cat, axis=axis, source=source, **FAST)
    assert out.shape == cat.shape
    assert torch.equal(out, out.flip(-1 if axis == "horizontal" else -2))
    assert symmetry_error(out, axis) == 0.0 and symmetry_error(cat, axis) > 5


def test_mirror_keeps_the_centre_of_odd_sizes():
    x = torch.arange(5.0).view(1, 1, 5)
    assert sidlite.mirror(x, "horizontal", "left").tolist() == [[[0, 1, 2, 1, 0]]]
    assert sidlite.mirror(x, "horizontal", "right").tolist() == [[[4, 3, 2, 3, 4]]]


def test_symmetric_in_a_latent_is_mirrored_after_decoding(cat):
    out = sidlite.symmetric(cat, latent=SpaceToDepth(), patch_size=3, steps=4, progress=False)
    assert torch.equal(out, out.flip(-1))


def test_symmetric_output_size_in_a_latent(cat):
    out = sidlite.symmetric(cat, (30, 50), latent=SpaceToDepth(), patch_size=3, steps=3, progress=False)
    assert out.shape == (3, 30, 50) and torch.equal(out, out.flip(-1))


def test_symmetric_rejects_a_wrong_source(cat):
    with pytest.raises(SidliteError, match="copies from 'top' or 'bottom'"):
        sidlite.symmetric(cat, axis="vertical", source="left", **FAST)


# ---------------------------------------------------------------- inpainting and outpainting

def _hole_coherence(out, image, hole, p=5):
    """Mean distance of the output's patches that touch the hole to the nearest intact input patch."""
    touching = extract_patches(hole[None].float(), p).amax(1) > 0
    intact = extract_patches((~hole)[None].float(), p).amin(1) > 0
    return float(nearest_patches(extract_patches(out, p)[touching], extract_patches(image, p)[intact])[0].mean())


def test_inpaint_keeps_known_pixels_and_fills_from_patches():
    stripes = sidlite.example_image("stripes", 40)
    hole = sidlite.rectangle_mask((40, 40), 12, 14, 14, 12)
    out = sidlite.inpaint(stripes, hole, **FAST)
    assert torch.equal(out[:, ~hole], stripes[:, ~hole])
    flat = torch.where(hole, stripes[:, ~hole].mean(1)[:, None, None], stripes)
    assert _hole_coherence(out, stripes, hole) < 0.1 * _hole_coherence(flat, stripes, hole)


def test_inpaint_never_reads_the_hole(cat):
    hole = sidlite.rectangle_mask(tuple(cat.shape[1:]), 10, 15, 10, 12)
    scribbled = torch.where(hole, torch.rand(cat.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1, cat)
    assert torch.equal(sidlite.inpaint(cat, hole, **FAST), sidlite.inpaint(scribbled, hole, **FAST))


def test_outpaint_extends_and_keeps_the_image(cat):
    out = sidlite.outpaint(cat, left=6, right=4, top=3, **FAST)
    assert out.shape == (3, cat.shape[1] + 3, cat.shape[2] + 10)
    assert torch.equal(out[:, 3:, 6:6 + cat.shape[2]], cat)


def test_mask_file_drawn_at_full_size_is_resized(tmp_path):
    full = sidlite.example_image("chelsea", 80)
    hole = sidlite.rectangle_mask(tuple(full.shape[1:]), 20, 30, 16, 16)
    sidlite.save_image((hole.float() * 2 - 1)[None].expand(3, -1, -1), tmp_path / "mask.png")
    args = ["inpaint", "example:chelsea", "--max-side", "40", "--patch-size", "5", "--steps", "3", "--quiet"]
    assert main([*args, "--mask", str(tmp_path / "mask.png"), "-o", str(tmp_path / "out.png")]) == 0
    small = sidlite.example_image("chelsea", 40)
    out = sidlite.load_image(tmp_path / "out.png")
    assert float((out - small)[:, :8].abs().max()) < 1 / 127  # rows far from the hole: the input, up to 8-bit rounding
    sidlite.save_image(torch.ones(3, 40, 40), tmp_path / "square.png")
    with pytest.raises(SidliteError, match="not the aspect ratio"):
        sidlite.inpaint(small, tmp_path / "square.png", **FAST)


def test_region_pyramid_is_the_mask_at_the_finest_level():
    hole = sidlite.rectangle_mask((32, 32), 8, 8, 8, 8)
    levels = region_pyramid(hole, [(32, 32), (16, 16), (8, 8)])
    assert levels[0] is hole and levels[1].sum() == 16 and levels[2].sum() == 4


def test_the_membrane_fill_reads_only_known_pixels_and_nears_laplaces_solution():
    from sidlite.apps._shared import smooth_fill

    image = sidlite.example_image("astronaut", 96)
    hole = sidlite.rectangle_mask((96, 96), 30, 20, 30, 40)
    converged = smooth_fill(image, hole, iterations=6000)  # plain Jacobi sweeps, run to convergence
    assert float((smooth_fill(image, hole, iterations=5000) - converged).abs().max()) < 1e-4
    fast = smooth_fill(image, hole)
    assert torch.equal(fast[:, ~hole], image[:, ~hole])
    scribbled = torch.where(hole, -image, image)
    assert torch.equal(smooth_fill(scribbled, hole), fast)
    # nearer the converged membrane than as many plain sweeps as the long side (the fill it replaced)
    error = float((fast - converged).abs().max())
    assert error < 0.5 * float((smooth_fill(image, hole, iterations=96) - converged).abs().max())
    # a hole across a thin strip: its coarser copies keep the strip's ends; a linear ramp is its own membrane
    ramp = torch.linspace(-1, 1, 200).repeat(3, 3, 1)
    across = torch.zeros(3, 200, dtype=torch.bool)
    across[:, 50:150] = True
    assert float((smooth_fill(ramp, across) - ramp).abs().max()) < 0.02


def test_inpaint_errors(cat):
    shape = tuple(cat.shape[1:])
    with pytest.raises(SidliteError, match="no pixel to fill"):
        sidlite.inpaint(cat, torch.zeros(shape, dtype=torch.bool), **FAST)
    with pytest.raises(SidliteError, match="same size"):
        sidlite.inpaint(cat, torch.ones(5, 5, dtype=torch.bool), **FAST)
    with pytest.raises(SidliteError, match="no intact"):
        sidlite.inpaint(cat, sidlite.rectangle_mask(shape, 2, 2, shape[0] - 4, shape[1] - 4), **FAST)


# ---------------------------------------------------------------- editing and harmonization

def test_edit_changes_the_edit_and_keeps_the_rest(cat):
    height, width = cat.shape[1:]
    piece = cat[:, 24:36, :12].flip(-1) * 0.5
    edited, mask = sidlite.paste(cat, piece, 4, 24)
    out = sidlite.edit(cat, edited, mask, keep_outside=False, **FAST)
    assert float((out - edited)[:, mask].abs().mean()) > 0.05  # the pasted piece is redrawn …
    # … with the image's own patches: closer to them than the naive paste
    box = (slice(None), slice(0, 20), slice(20, 40))
    assert sidlite.coherence(out[box], cat, 5) < sidlite.coherence(edited[box], cat, 5)
    far = ~torch.nn.functional.max_pool2d(mask[None, None].float(), 11, 1, 5)[0, 0].bool()
    assert float((out - cat)[:, far].abs().mean()) < 0.02  # stated tolerance: 0.01 of the [-1, 1] range
    kept = sidlite.edit(cat, edited, mask, **FAST)  # keep_outside: exact beyond the feathered mask
    beyond = ~torch.nn.functional.max_pool2d(mask[None, None].float(), 21, 1, 10)[0, 0].bool()
    assert torch.equal(kept[:, beyond], cat[:, beyond])


def test_edit_needs_an_edit(cat):
    with pytest.raises(SidliteError, match="equals the input"):
        sidlite.edit(cat, cat.clone(), **FAST)


# ---------------------------------------------------------------- super-resolution

@pytest.mark.parametrize("factor", [2, 3])
def test_upscale_shrinks_back_to_the_input(cat, factor):
    out = sidlite.upscale(cat, factor, steps=4, progress=False)
    assert out.shape == (3, round(cat.shape[1] * factor), round(cat.shape[2] * factor))
    assert float(out.min()) >= -1 and float(out.max()) <= 1  # as promised (back-projection overshoots at edges)
    # stated tolerance: mean |Δ| < 0.01 and max |Δ| < 0.1 in [-1, 1] units after shrinking back
    back = resize(out, tuple(cat.shape[1:]))
    assert float((back - cat).abs().mean()) < 0.01 and float((back - cat).abs().max()) < 0.1
    plain = sidlite.upscale(cat, factor, steps=4, consistency=0, progress=False)
    assert float((resize(plain, tuple(cat.shape[1:])) - cat).abs().mean()) > float((back - cat).abs().mean())


def test_upscale_rejects_shrinking(cat):
    with pytest.raises(SidliteError, match="larger than 1"):
        sidlite.upscale(cat, 0.5)


def test_tile_previews_of_large_outputs_are_shrunk_and_still_repeat():
    from sidlite.apps.tileable import tile_preview_pixels

    pixels = np.random.default_rng(0).integers(0, 256, (100, 60, 3), dtype=np.uint8)
    assert np.array_equal(tile_preview_pixels(pixels, 2, 3, long_side=512), np.tile(pixels, (2, 3, 1)))
    preview = tile_preview_pixels(pixels, 3, 3, long_side=128)  # 300 x 180 whole: shrunk 3x first
    assert preview.shape == (99, 60, 3) and max(preview.shape[:2]) <= 128
    assert np.array_equal(preview[:33], preview[33:66]) and np.array_equal(preview[:, :20], preview[:, 40:])
    assert tile_preview_pixels(pixels[..., 0], 2, 2, long_side=512).shape == (200, 120)  # grey stays 2-D


def test_latent_outputs_decoded_whole_are_planned_before_sampling(monkeypatch):
    """symmetric and tileable return the decoded image, so its float copies must fit beside the finest level."""
    from sidlite.model import SingleImageModel

    image = sidlite.example_image("gravel", max_side=64)
    monkeypatch.setattr(SingleImageModel, "sample", lambda *a, **k: pytest.fail("sampling started"))
    for app in (sidlite.symmetric, sidlite.tileable):
        with pytest.raises(SidliteError, match=r"decoding the 2048x2048 output takes .* memory budget 200.0 MB"):
            app(image, (2048, 2048), latent="pca", patch_size=3, steps=1, memory_budget="200MB", progress=False)


# ---------------------------------------------------------------- command line

def test_cli_subcommands(tmp_path):
    common = ["example:chelsea", "--max-side", "40", "--patch-size", "5", "--steps", "3", "--quiet"]
    assert main(["retarget", *common, "--size", "30", "60", "-o", str(tmp_path / "r.png")]) == 0
    assert main(["tile", *common, "-o", str(tmp_path / "t.png")]) == 0
    tile = np.asarray(Image.open(tmp_path / "t.png"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "t_2x2.png")), np.tile(tile, (2, 2, 1)))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "t_3x3.png")), np.tile(tile, (3, 3, 1)))
    assert main(["symmetric", *common, "--axis", "vertical", "-o", str(tmp_path / "s.png")]) == 0
    # --rect is in the input's own pixels: 90 of chelsea's 451 columns are 8 at --max-side 40
    assert main(["inpaint", *common, "--rect", "90", "90", "90", "90", "-o", str(tmp_path / "i.png")]) == 0
    assert main(["inpaint", *common, "--extend", "0", "0", "4", "4", "-o", str(tmp_path / "o.png")]) == 0
    sidlite.save_image(sidlite.example_image("chelsea", 12), tmp_path / "piece.png")
    assert main(["edit", *common, "--paste", str(tmp_path / "piece.png"), "--at", "4", "4", "-o", str(tmp_path / "e.png")]) == 0
    assert main(["upscale", *common, "--factor", "2", "-o", str(tmp_path / "u.png")]) == 0
    assert sidlite.load_image(tmp_path / "u.png").shape[1:] == (round(27 * 2), 80)


def test_cli_refuses_to_overwrite_and_reports_errors(tmp_path, capsys):
    target = tmp_path / "t.png"
    target.write_bytes(b"")
    assert main(["tile", "example:dots", "--max-side", "32", "-o", str(target)]) == 2
    assert "already exists" in capsys.readouterr().err
    assert main(["edit", "example:dots", "--paste", str(target), "-o", str(tmp_path / "e.png")]) == 2
    assert "--at" in capsys.readouterr().err


@pytest.mark.parametrize("direction,num_shifts,stride", [("both", 4, 1), ("both", 3, 1), ("horizontal", 4, 2),
                                                         ("vertical", 4, 1)])
def test_shifted_estimate_crops_give_the_whole_image_values(direction, num_shifts, stride):
    """Each rolled call denoises only the crop its mask needs; the blend equals whole-image calls."""
    from sidlite.apps.tileable import shifted_estimate
    from sidlite.denoiser import ImageDenoiser

    generator = torch.Generator().manual_seed(3)
    image = torch.rand(3, 36, 44, generator=generator) * 2 - 1
    denoiser = ImageDenoiser(image, 5, "exact", query_stride=stride)
    x_t = 0.7 * torch.roll(image, (5, 9), (1, 2)) + 0.7 * torch.randn(3, 36, 44, generator=generator)
    layout = shift_masks(36, 44, direction, num_shifts)
    whole = sum(m * torch.roll(denoiser(torch.roll(x_t, s, (-2, -1)), 0.7, 0.7), (-s[0], -s[1]), (-2, -1))
                for s, m in layout) / sum(m for _, m in layout)
    assert torch.allclose(shifted_estimate(denoiser, x_t, 0.7, 0.7, layout), whole, atol=1e-5)


@pytest.mark.parametrize("app", ["inpaint", "upscale", "analogy", "palette"])
def test_every_application_plans_its_levels_under_the_memory_budget(cat, app):
    hole = sidlite.rectangle_mask(tuple(cat.shape[1:]), 10, 15, 10, 12)
    run = {"inpaint": lambda **o: sidlite.inpaint(cat, hole, **o),
           "upscale": lambda **o: sidlite.upscale(cat, 4, **o),
           "analogy": lambda **o: sidlite.structural_analogy(cat, cat.flip(2), num_levels=2, steps=[2, 2], **o),
           "palette": lambda **o: sidlite.palette_style(cat, cat.flip(1), steps=4, **o)}[app]
    with pytest.raises(SidliteError, match="memory budget .* raise `memory_budget`"):
        run(memory_budget="64KB", progress=False, patch_size=5)
    with pytest.raises(SidliteError, match="query stride"):
        run(query_stride=9, progress=False, patch_size=5)


def test_application_levels_hold_one_index_at_a_time(cat):
    """planned_denoisers builds a level's denoiser when the level is asked for and drops the one before, so
    its plan counts one index per level, not the sum of every level's (which refused sizes that fit)."""
    from sidlite.apps._shared import app_plan, planned_denoisers
    from sidlite.config import configure
    from sidlite.plan import plan_levels

    config = configure("inpaint", "pixels", None, {"patch_size": 5, "progress": False})
    shapes = [tuple(cat.shape[1:]), (cat.shape[1] // 2, cat.shape[2] // 2)]
    levels = [cat, resize(cat, shapes[1])]
    plan = app_plan(shapes, shapes, 3, config)
    every = plan_levels(shapes, shapes, 3, 5, config.backend, keep_levels=True)
    assert plan.levels[0].index_bytes < every.levels[0].index_bytes  # the coarser level's index is not counted
    denoisers = planned_denoisers(levels, shapes, config, plan=plan)
    finest = denoisers[0]
    assert denoisers[0] is finest  # built once while its level lasts
    coarser = denoisers[1]
    assert denoisers[0] is not finest and coarser is not finest  # the finest was dropped, and is built anew


def test_wrong_arguments_of_the_applications_are_one_line_errors():
    image, piece = sidlite.example_image("chelsea", 48), sidlite.example_image("dots", 12)
    model = sidlite.SingleImageModel(image, 7)
    for call, message in ((lambda: sidlite.paste(image, piece, 5.5, 3), "top is a whole number"),
                          (lambda: sidlite.paste(image, piece[:1], 5, 3), "the piece has 1 channels"),
                          (lambda: sidlite.edit(image, image.flip(2), noise_level=None), "noise_level must lie"),
                          (lambda: sidlite.edit(image, image.flip(2), feather_width=float("nan")), "feather_width"),
                          (lambda: sidlite.upscale(image, "2"), "factor must be a finite number"),
                          (lambda: sidlite.upscale(image, 1.01), "leaves the 32x48 image at its size"),
                          (lambda: sidlite.example_image("brick", "96"), "max_side must be a whole number"),
                          (lambda: list(model.images("2")), "count must be a whole number")):
        with pytest.raises(sidlite.SidliteError, match=message):
            call()
    assert sidlite.paste(image, piece, np.int64(5), 3)[1].sum() == 12 * 12  # NumPy's integers are whole numbers


def test_an_edit_the_image_redraws_away_is_noted():
    """A small foreign object at start_level 1 is replaced by the image's own patches: the result says so."""
    image = sidlite.example_image("chelsea", 96)
    edited, mask = sidlite.paste(image, sidlite.example_image("rocket", 20), 10, 20)
    with pytest.warns(UserWarning, match="redrawn away.*start_level=0"):
        sidlite.edit(image, edited, mask, steps=3, progress=False)
    kept = sidlite.edit(image, edited, mask, start_level=0, noise_level=0.2, steps=3, progress=False)
    assert float((kept - image)[:, mask].abs().mean()) > 0.25 * float((edited - image)[:, mask].abs().mean())


def test_the_unit_range_note_is_given_once_at_the_callers_line():
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sidlite.generate((sidlite.example_image("dots", 24) + 1) / 2, patch_size=5, steps=1, progress=False)
    notes = [w for w in caught if "no value below 0" in str(w.message)]
    assert len(notes) == 1 and notes[0].filename == __file__


def test_masks_come_as_drawn_from_any_source():
    """The same hole as a boolean tensor, an (H, W, 3) uint8 array as painted, a PIL image at twice the size
    and a [0, 1] float tensor: one mask."""
    from sidlite.apps._shared import as_mask

    hole = sidlite.rectangle_mask((24, 32), 6, 8, 10, 12)
    painted = np.repeat(hole.numpy()[..., None].astype(np.uint8) * 255, 3, axis=2)
    big = Image.fromarray(np.repeat(np.repeat(painted, 2, axis=0), 2, axis=1))
    for source in (hole, painted, big, hole.float()):
        assert torch.equal(as_mask(source, (24, 32)), hole), type(source)
