"""Codecs: identity, the weight-free block-PCA latent, the diffusers VAEs (tiny random models, no network)."""
import json
import math

import pytest
import torch

import sidlite
from sidlite.cli import main
from sidlite.codecs import BlockPCACodec, Codec, VAECodec, center_crop, get_codec, psnr
from sidlite.codecs.pca import blocks_to_image, image_to_blocks
from sidlite.codecs.tiling import tile_starts, tiled_map
from sidlite.errors import SidliteError


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    return sidlite.example_image("astronaut", max_side=128)


@pytest.fixture(scope="module")
def vae_folders(tmp_path_factory):
    """Tiny randomly initialised AutoencoderKL (in a vae/ subfolder, like a pipeline) and AutoencoderTiny."""
    from diffusers import AutoencoderKL, AutoencoderTiny

    torch.manual_seed(0)
    root = tmp_path_factory.mktemp("vaes")
    AutoencoderKL(block_out_channels=(8, 16), down_block_types=("DownEncoderBlock2D",) * 2,
                  up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4,
                  norm_num_groups=4, sample_size=32, scaling_factor=0.5, shift_factor=0.1).save_pretrained(root / "kl" / "vae")
    AutoencoderTiny(encoder_block_out_channels=(8, 8), decoder_block_out_channels=(8, 8), num_encoder_blocks=(1, 1),
                    num_decoder_blocks=(1, 1), latent_channels=4).save_pretrained(root / "tiny")
    return {"kl": root / "kl", "tiny": root / "tiny"}


# --- the interface and get_codec -------------------------------------------------------------------------

def test_identity_codec_round_trips(photo):
    codec = get_codec(None, photo)
    assert codec.cell_size == 1 and codec.name == "pixels"
    assert torch.equal(codec.decode(codec.encode(photo)), photo)
    assert codec.psnr(photo) == math.inf
    assert isinstance(get_codec("pixels"), Codec) and get_codec(codec) is codec


@pytest.mark.parametrize("spec, message", [("jpeg", "unknown latent space"), ("pca:x", "whole number"),
                                           ("pca:0", "between 1 and 192"), ("vae:", "needs a model"),
                                           (3, "a latent space is a name")])
def test_bad_specs_name_the_fix(spec, message):
    with pytest.raises(SidliteError, match=message):
        get_codec(spec)


def test_center_crop_keeps_the_middle():
    image = torch.arange(3 * 21 * 35, dtype=torch.float32).reshape(3, 21, 35)
    crop = center_crop(image, 8)
    assert crop.shape == (3, 16, 32)
    assert torch.equal(crop, image[:, 2:18, 1:33])
    with pytest.raises(SidliteError, match="smaller than one 16x16 block"):
        center_crop(image[:, :10], 16)


def test_psnr_of_a_known_error():
    a = torch.zeros(3, 4, 4)
    assert psnr(a + 0.02, a) == pytest.approx(10 * math.log10(4 / 0.0004))


# --- the weight-free PCA latent --------------------------------------------------------------------------

def test_blocks_round_trip():
    image = torch.randn(3, 16, 24)
    rows = image_to_blocks(image, 8)
    assert rows.shape == (6, 192)
    assert torch.equal(rows[1], image[:, 0:8, 8:16].reshape(-1))
    assert torch.equal(blocks_to_image(rows, (3, 16, 24), 8), image)


def test_pca_shapes_crop_and_cell_size(photo):
    image = photo[:, :70, :100]  # crop to 64 x 96 (multiples of 16)
    codec = get_codec("pca", image)
    z = codec.encode(image)
    assert codec.cell_size == 8 and z.shape == (16, 8, 12)
    assert codec.latent_shape((70, 100)) == (8, 12)
    out = codec.decode(z)
    assert out.shape == codec.crop(image).shape == (3, 64, 96)
    assert out.min() >= -1 and out.max() <= 1


def test_pca_quality_grows_with_channels_and_is_lossless_at_192(photo):
    values = [get_codec(f"pca:{k}", photo).psnr(photo) for k in (4, 16, 64)]
    assert values[0] < values[1] < values[2]
    assert values[1] > 22  # 16 of 192 components of a natural photo
    full = get_codec("pca:192", photo)
    assert full.psnr(photo) > 60 and full.explained_variance() == pytest.approx(1.0)


def test_pca_scale_matches_pixel_energy_and_keeps_distances_proportional(photo):
    codec = get_codec("pca", photo)
    z = codec.encode(photo)
    assert codec.scale == pytest.approx(1 / math.sqrt(12))
    rows = image_to_blocks(codec.crop(photo).double(), 8)
    pixel_ms = float(((rows - rows.mean(0)) ** 2).mean())
    # the latent's mean square is the pixels' mean square times the share of variance kept
    assert float((z.double() ** 2).mean()) == pytest.approx(pixel_ms * codec.explained_variance(), rel=1e-3)
    lossless = get_codec("pca:192", photo)
    zz = lossless.encode(photo).reshape(192, -1).T.double()
    assert torch.allclose(torch.cdist(zz[:50], zz[50:100]), lossless.scale * torch.cdist(rows[:50], rows[50:100]), atol=1e-4)


def test_pca_fit_is_deterministic_and_needs_fitting(photo):
    a, b = get_codec("pca", photo), get_codec("pca", photo.clone())
    assert torch.equal(a.basis, b.basis) and torch.equal(a.encode(photo), b.encode(photo))
    assert torch.allclose(a.basis.T @ a.basis, torch.eye(16), atol=1e-5)
    with pytest.raises(SidliteError, match="not fitted"):
        BlockPCACodec().encode(photo)
    with pytest.raises(SidliteError, match="RGB"):
        a.encode(photo[:1])
    with pytest.raises(SidliteError, match=r"\(16, h, w\) PCA latent"):
        a.decode(torch.zeros(4, 2, 2))


def test_pca_latent_that_tiles_decodes_to_an_image_that_tiles(photo):
    codec = get_codec("pca", photo)
    z = torch.randn(16, 6, 10, generator=torch.Generator().manual_seed(0)) * 0.5
    tile = codec.decode(z)
    assert torch.equal(codec.decode(torch.cat([z, z], -1)), torch.cat([tile, tile], -1))
    assert torch.equal(codec.decode(torch.cat([z, z], -2)), torch.cat([tile, tile], -2))
    # blockwise: a shift by one cell is a shift by 8 pixels, including around the wrap
    assert torch.equal(codec.decode(torch.roll(z, (1, 3), (1, 2))), torch.roll(tile, (8, 24), (1, 2)))
    assert torch.equal(codec.decode(z, periodic=True), tile)


# --- tiled evaluation ------------------------------------------------------------------------------------

def test_tile_starts_cover_the_grid():
    assert tile_starts(5, 8, 2) == [0]
    assert tile_starts(20, 8, 2) == [0, 6, 12]
    assert tile_starts(21, 8, 2) == [0, 6, 12, 13]


@pytest.mark.parametrize("tile, overlap", [(4, 1), (5, 2), (7, 0)])
def test_tiled_map_of_cellwise_maps_is_exact(tile, overlap):
    """For a map that acts cell by cell, tiling and blending must give exactly the untiled result."""
    x = torch.randn(1, 3, 26, 38, dtype=torch.float64)
    down = lambda t: torch.nn.functional.avg_pool2d(t, 2).repeat(1, 2, 1, 1)  # noqa: E731
    assert torch.allclose(tiled_map(down, x, (13, 19), 2, 1, 6, tile, overlap), down(x))
    z = torch.randn(1, 4, 13, 19, dtype=torch.float64)
    up = lambda t: torch.nn.functional.interpolate(t[:, :3], scale_factor=4)  # noqa: E731
    assert torch.allclose(tiled_map(up, z, (13, 19), 1, 4, 3, tile, overlap), up(z))


# --- diffusers VAEs (tiny random models built from a config, loaded from folders) ------------------------

@pytest.mark.parametrize("kind", ["kl", "tiny"])
def test_vae_codec_shapes_cell_size_and_determinism(vae_folders, photo, kind):
    codec = VAECodec(str(vae_folders[kind]), device="cpu")
    assert codec.cell_size == 2 and codec.channels == 4
    assert codec.kind == {"kl": "AutoencoderKL", "tiny": "AutoencoderTiny"}[kind]
    assert (codec.scaling, codec.shift) == ((0.5, 0.1) if kind == "kl" else (1.0, 0.0))
    image = photo[:, :37, :53]  # centre-cropped to 32 x 48 (multiples of 16)
    z = codec.encode(image)
    assert z.shape == (4, 16, 24) and z.dtype == torch.float32
    assert torch.equal(codec.encode(image), z)  # the posterior mode: no sampling
    out = codec.decode(z)
    assert out.shape == (3, 32, 48) and out.min() >= -1 and out.max() <= 1
    assert math.isfinite(codec.psnr(image))


def test_vae_codec_uses_mode_scaling_and_shift(vae_folders, photo):
    codec = get_codec(f"vae:{vae_folders['kl']}")
    x = codec.crop(photo)[None]
    with torch.no_grad():
        mode = codec.model.encode(x).latent_dist.mode()
        expected = codec.model.decode(mode).sample[0].clamp(-1, 1)
    z = codec.encode(photo)
    assert torch.allclose(z, ((mode - 0.1) * 0.5)[0], atol=1e-6)
    assert torch.allclose(codec.decode(z), expected, atol=1e-5)


@pytest.mark.parametrize("kind", ["kl", "tiny"])
def test_vae_tiled_encode_and_decode(vae_folders, photo, kind):
    whole = VAECodec(str(vae_folders[kind]), device="cpu", tile=None)
    tiled = VAECodec(str(vae_folders[kind]), device="cpu", tile=12, overlap=4)
    image = photo[:, :64, :80]  # 32 x 40 cells: 4 x 5 tiles
    z, zt = whole.encode(image), tiled.encode(image)
    assert zt.shape == z.shape == (4, 32, 40) and torch.equal(tiled.encode(image), zt)
    assert torch.isfinite(zt).all()
    out = tiled.decode(zt)
    assert out.shape == (3, 64, 80) and torch.equal(tiled.decode(zt), out)
    if kind == "tiny":  # no normalization layers: tiles far from their borders agree with the whole image
        assert torch.allclose(zt[:, :5, :5], z[:, :5, :5], atol=1e-5)


@pytest.mark.parametrize("kind", ["kl", "tiny"])
def test_vae_periodic_decode_commutes_with_circular_shifts(vae_folders, kind):
    codec = VAECodec(str(vae_folders[kind]), device="cpu")
    z = torch.randn(4, 8, 12, generator=torch.Generator().manual_seed(1))
    out = codec.decode(z, periodic=True)
    shifted = codec.decode(torch.roll(z, (3, 5), (1, 2)), periodic=True)
    assert torch.allclose(shifted, torch.roll(out, (6, 10), (1, 2)), atol=1e-5)
    assert not torch.allclose(codec.decode(torch.roll(z, (3, 5), (1, 2))), torch.roll(codec.decode(z), (6, 10), (1, 2)), atol=1e-3)
    assert all(m.padding_mode == "zeros" for m in codec.model.modules() if isinstance(m, torch.nn.Conv2d))


@pytest.mark.parametrize("kind", ["kl", "tiny"])
def test_vae_decoding_memory_is_one_tile_unless_periodic(vae_folders, kind):
    """A tiled decode's network works on one tile at a time, so its working memory stops growing with the
    image but for the tiles' sums; a periodic decode is one call over the whole image."""
    from sidlite.large_output import save_bytes

    codec = VAECodec(str(vae_folders[kind]), device="cpu", tile=12, overlap=4)
    one_tile, four, many = codec.network_bytes((12, 12)), codec.network_bytes((24, 24)), codec.network_bytes((48, 48))
    sums = lambda cells: (cells * codec.cell_size) ** 2 * 32  # noqa: E731  float64 image and weight sums
    assert four - one_tile == sums(24) and many - four == sums(48) - sums(24)
    assert codec.network_bytes((48, 48), periodic=True) == 16 * (one_tile - sums(0))
    assert codec.network_bytes((6, 6), periodic=True) == codec.network_bytes((6, 6))  # one call either way
    side = 48 * codec.cell_size
    assert save_bytes(codec, side, side) - save_bytes(get_codec("pca", torch.rand(3, 32, 32) * 2 - 1), side, side) \
        == many  # saving counts the network beside the decoded image


def test_a_tileable_output_the_vae_cannot_decode_periodically_is_refused_before_sampling(vae_folders, monkeypatch):
    from sidlite.model import SingleImageModel

    codec = VAECodec(str(vae_folders["kl"]), device="cpu")
    image = sidlite.example_image("chelsea", max_side=96)
    monkeypatch.setattr(SingleImageModel, "sample", lambda *a, **k: pytest.fail("sampling started"))
    with pytest.raises(SidliteError, match=r"decoding the 512x512 output takes .*`memory_budget`"):
        sidlite.tileable(image, (512, 512), latent=codec, patch_size=3, steps=1, memory_budget="60MB", progress=False)
    monkeypatch.undo()
    out = sidlite.tileable(image, (512, 512), latent=codec, patch_size=3, steps=1, memory_budget="120MB", progress=False)
    assert out.shape == (3, 512, 512)


def test_missing_models_say_how_to_get_them(tmp_path):
    with pytest.raises(SidliteError, match=r"huggingface-cli download nobody/no-such-vae"):
        VAECodec("nobody/no-such-vae", device="cpu")
    with pytest.raises(SidliteError, match=r"black-forest-labs/FLUX.1-schnell --include 'vae/\*'.*licence"):
        get_codec("vae:flux")
    with pytest.raises(SidliteError, match="VAE folder not found"):
        get_codec(f"vae:{tmp_path / 'absent'}")
    with pytest.raises(SidliteError, match="holds no VAE config.json"):
        get_codec(f"vae:{tmp_path}")
    (tmp_path / "config.json").write_text(json.dumps({"_class_name": "UNet2DModel"}))
    with pytest.raises(SidliteError, match="is a UNet2DModel"):
        get_codec(f"vae:{tmp_path}")


# --- end to end ------------------------------------------------------------------------------------------

def test_generate_in_the_pca_latent(photo):
    out = sidlite.generate(photo, 2, latent="pca", size=(96, 128), patch_size=3, steps=3, eta=1.0, rho=math.inf,
                           min_short_side=6, progress=False)
    assert out.shape == (2, 3, 96, 128)
    assert not torch.equal(out[0], out[1])
    again = sidlite.generate(photo, 1, latent="pca", size=(96, 128), patch_size=3, steps=3, eta=1.0,
                             rho=math.inf, min_short_side=6, progress=False)
    assert torch.equal(again[0], out[0])


def test_cli_generate_with_pca_and_a_vae_folder(vae_folders, tmp_path):
    from PIL import Image

    pca_out, vae_out = tmp_path / "pca.png", tmp_path / "vae.png"
    common = ["--max-side", "96", "--steps", "2", "--patch-size", "3", "--quiet"]
    assert main(["generate", "example:chelsea", "-o", str(pca_out), "--latent", "pca", *common]) == 0
    assert main(["generate", "example:chelsea", "-o", str(vae_out), "--latent", f"vae:{vae_folders['kl']}", *common]) == 0
    # chelsea shrunk to 96 x 64 (W x H) is already a multiple of 16: both latents decode to that size
    assert Image.open(pca_out).size == (96, 64) and Image.open(vae_out).size == (96, 64)
    assert main(["generate", "example:chelsea", "-o", str(tmp_path / "x.png"), "--latent", "vae:nobody/none", *common]) == 2
