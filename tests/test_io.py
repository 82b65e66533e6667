"""Image loading and saving for every common mode, and the bundled examples."""
import numpy as np
import pytest
import torch
from PIL import Image

import sidlite
from sidlite import SidliteError, as_image, load_image, save_image


def roundtrip(tmp_path, array, mode=None, name="x.png"):
    path = tmp_path / name
    Image.fromarray(array, mode=mode).save(path) if mode else Image.fromarray(array).save(path)
    return load_image(path)


def test_rgb_loads_in_range(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    image = roundtrip(tmp_path, array)
    assert image.shape == (3, 9, 11) and image.dtype == torch.float32
    assert image.min() >= -1 and image.max() <= 1
    torch.testing.assert_close(image, torch.from_numpy(array).permute(2, 0, 1).float() / 127.5 - 1)


def test_grayscale_palette_and_16bit(tmp_path):
    gray = np.arange(20, dtype=np.uint8).reshape(4, 5) * 10
    assert roundtrip(tmp_path, gray).shape == (3, 4, 5)
    palette = Image.fromarray(gray).convert("P")
    palette.save(tmp_path / "p.png")
    torch.testing.assert_close(load_image(tmp_path / "p.png"), roundtrip(tmp_path, gray), atol=0.02, rtol=0)
    deep = (np.arange(20, dtype=np.uint16).reshape(4, 5) * 3000)
    Image.fromarray(deep).save(tmp_path / "d.png")
    loaded = load_image(tmp_path / "d.png")
    assert loaded.shape == (3, 4, 5)
    assert loaded[0, 3, 4] == pytest.approx(19 * 3000 / 65535 * 2 - 1, abs=1e-4)


def test_rgba_is_composited_over_white_with_a_warning(tmp_path):
    array = np.zeros((4, 4, 4), dtype=np.uint8)
    array[..., 3] = 0  # fully transparent black
    with pytest.warns(UserWarning, match="transparency"):
        image = roundtrip(tmp_path, array)
    assert torch.all(image == 1)


def test_save_refuses_to_overwrite(tmp_path):
    image = torch.zeros(3, 4, 4)
    path = save_image(image, tmp_path / "out.png")
    with pytest.raises(SidliteError, match="already exists"):
        save_image(image, path)
    save_image(-image, path, overwrite=True)
    assert load_image(path).shape == (3, 4, 4)


def test_save_rounds_and_clamps(tmp_path):
    image = torch.tensor([-2.0, 0.0, 1.0 / 255, 5.0]).reshape(1, 1, 4).expand(3, 1, 4)
    array = np.asarray(Image.open(save_image(image, tmp_path / "r.png")))
    assert array[0, :, 0].tolist() == [0, 128, 128, 255]


@pytest.mark.parametrize("channels", [3, 1])
def test_eight_bits_are_made_in_blocks_of_rows_with_the_same_values(monkeypatch, channels):
    image = torch.linspace(-1.3, 1.3, channels * 37 * 11).reshape(channels, 37, 11)  # out of range at both ends
    whole = ((image.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    monkeypatch.setattr(sidlite.image_io, "UINT8_BLOCK_VALUES", 5 * channels * 11)  # 8 blocks, the last short
    blocks = sidlite.image_io.to_uint8(image)
    assert blocks.flags.c_contiguous and blocks.dtype == np.uint8
    assert np.array_equal(blocks, whole[..., 0] if channels == 1 else whole)


def test_integer_tensors_are_refused_as_ambiguous():
    with pytest.raises(SidliteError, match="x / 127.5 - 1"):
        as_image(torch.zeros(3, 8, 8, dtype=torch.uint8))
    with pytest.raises(SidliteError, match="device"):
        sidlite.SingleImageModel(torch.zeros(3, 16, 16), 5, device=7)
    with pytest.raises(SidliteError, match="two positive integers"):
        sidlite.SingleImageModel(torch.zeros(3, 16, 16), 5, output_size=32)
    for shape in ((16, 16), (5, 16, 16)):
        with pytest.raises(SidliteError, match="1 or 3 channels"):
            save_image(torch.zeros(shape), "never-written.png")


def test_missing_unreadable_and_wrong_inputs(tmp_path):
    with pytest.raises(SidliteError, match="not found"):
        load_image(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_text("not an image")
    with pytest.raises(SidliteError, match="cannot read"):
        load_image(tmp_path / "bad.png")
    with pytest.raises(SidliteError, match="folder"):
        load_image(tmp_path)
    with pytest.raises(SidliteError):
        as_image(42)
    with pytest.raises(SidliteError):
        as_image(np.zeros((3, 3, 5)))


def test_examples_are_offline_and_credited():
    for name in sidlite.example_names():
        image = sidlite.example_image(name, max_side=32)
        assert image.shape[0] == 3 and max(image.shape[1:]) <= 32
        assert sidlite.example_credit(name)
    with pytest.raises(SidliteError, match="unknown example"):
        sidlite.example_image("lena")


def test_benchmark_images_load(shared_data):
    image = load_image(shared_data / "sinddm15" / "starry_night.png")  # RGBA in the set
    assert image.shape[0] == 3 and min(image.shape[1:]) >= 160


def test_a_shrunk_image_stays_in_range():
    """The resize rings past [-1, 1] at the astronaut's sharp edges (-1.08 to 1.14 at 64 px); shrink_to clamps."""
    small = sidlite.example_image("astronaut", max_side=64)
    assert max(small.shape[1:]) == 64
    assert float(small.min()) >= -1 and float(small.max()) <= 1


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "P", "I;16"])
@pytest.mark.parametrize("shape", [(300, 170), (170, 300), (211, 211), (40, 23)])
def test_shrinking_on_reading_gives_the_whole_image_resize(tmp_path, monkeypatch, mode, shape):
    """load_image(path, max_side) converts and shortens the input band by band (here bands of a few rows or
    columns); its pixels must be those of shrinking the whole converted image, in every mode and both
    orientations (the first pass runs along the width of tall images, along the height of wide ones)."""
    from sidlite import image_io

    rng = np.random.default_rng(1)
    height, width = shape
    if mode == "I;16":
        deep = rng.integers(0, 256, shape, dtype=np.uint16)
        deep[-1, -1] = 60000  # one bright pixel sets the whole image's scale, in whichever band it falls
        picture = Image.fromarray(deep)
    else:
        base = Image.fromarray(rng.integers(0, 256, (height, width, 4), dtype=np.uint8), "RGBA")
        picture = base.convert(mode) if mode != "RGBA" else base
    picture.save(tmp_path / "big.png")
    whole = image_io.shrink_to(load_image(tmp_path / "big.png"), 64)
    monkeypatch.setattr(image_io, "READ_BAND_VALUES", 3 * max(shape) * 7)  # bands of 7 rows or columns
    banded = load_image(tmp_path / "big.png", max_side=64)
    assert banded.shape == whole.shape and max(banded.shape[1:]) == min(64, max(shape))
    torch.testing.assert_close(banded, whole, atol=1e-6, rtol=0)


@pytest.mark.parametrize("orientation,turn", [(1, lambda a: a), (3, lambda a: np.rot90(a, 2)),
                                              (6, lambda a: np.rot90(a, -1)), (8, lambda a: np.rot90(a, 1))])
def test_photographs_are_turned_upright_by_their_exif_orientation(tmp_path, orientation, turn):
    """A phone stores a portrait sideways with an orientation tag; it loads as a viewer shows it."""
    array = np.random.default_rng(2).integers(0, 256, (6, 10, 3), dtype=np.uint8)
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.fromarray(array).save(tmp_path / "photo.png", exif=exif)
    expected = torch.from_numpy(np.ascontiguousarray(turn(array))).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(load_image(tmp_path / "photo.png"), expected)
    with Image.open(tmp_path / "photo.png") as handle:  # an opened image too, left as it was
        torch.testing.assert_close(as_image(handle), expected)
        assert handle.size == (10, 6)
    from sidlite.image_io import shrink_to

    torch.testing.assert_close(load_image(tmp_path / "photo.png", max_side=5), shrink_to(expected, 5), atol=1e-6, rtol=0)


def test_data_on_another_scale_is_refused_not_clipped():
    with pytest.raises(SidliteError, match=r"x / 127.5 - 1"):
        as_image(torch.full((3, 8, 8), 200.0))  # 0-255 floats
    assert as_image(torch.full((3, 8, 8), 4.0)).shape == (3, 8, 8)  # a latent's few units pass
    with pytest.raises(SidliteError, match="divide 0-255 data by 255"):
        as_image(np.full((8, 8, 3), 200.0))  # would have been clipped to white
    with pytest.raises(SidliteError, match=r"\[-1, 1\] data as a torch tensor"):
        as_image(np.linspace(-1, 1, 192).reshape(8, 8, 3))  # would have lost its dark half
    overshoot = np.linspace(-0.05, 1.05, 192).reshape(8, 8, 3)  # a resampler's overshoot is clipped
    assert float(as_image(overshoot).min()) == -1.0 and float(as_image(overshoot).max()) == 1.0


def test_tensors_are_checked_and_computed_in_float32(tmp_path):
    with pytest.raises(SidliteError, match=r"looks like \(H, W, C\)"):
        as_image(torch.zeros(20, 30, 3))
    assert as_image(torch.zeros(3, 8, 8, dtype=torch.float64)).dtype == torch.float32
    with pytest.warns(UserWarning, match="no value below 0"):  # [0, 1] data, as torchvision makes it
        as_image(torch.rand(3, 8, 8))
    image = torch.linspace(-1, 1, 3 * 24 * 24).reshape(3, 24, 24)
    a = sidlite.generate(image, patch_size=5, steps=2, seed=3)
    b = sidlite.generate(image.double(), patch_size=5, steps=2, seed=3)  # was another draw of the noise
    assert b.dtype == torch.float32 and torch.equal(a, b)


def test_save_image_refuses_what_it_would_write_as_garbage(tmp_path):
    image = torch.linspace(-1, 1, 3 * 8 * 8).reshape(3, 8, 8)
    for bad, message in (((image + 1) * 127.5, "x / 127.5 - 1"), (((image + 1) * 127.5).byte(), "got torch.uint8"),
                         (image * float("nan"), "NaN"), ("picture.png", "cannot save a str")):
        with pytest.raises(SidliteError, match=message):
            sidlite.save_image(bad, tmp_path / "never.png")
    assert not (tmp_path / "never.png").exists()
    array = ((image + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    for source in (array, Image.fromarray(array)):  # read as as_image reads them: the same pixels come back
        path = sidlite.save_image(source, tmp_path / "kept.png", overwrite=True)
        assert np.array_equal(np.asarray(Image.open(path)), array)
    with pytest.raises(SidliteError, match="overwrite=True in Python"):
        sidlite.save_image(image, tmp_path / "kept.png")


def test_float_image_files_are_read_as_zero_to_one(tmp_path):
    values = np.linspace(0, 1, 40 * 50, dtype=np.float32).reshape(40, 50)
    Image.fromarray(values, mode="F").save(tmp_path / "unit.tif")
    image = load_image(tmp_path / "unit.tif")
    assert image.shape == (3, 40, 50)
    torch.testing.assert_close(image[0], torch.from_numpy(values) * 2 - 1)
    Image.fromarray(values * 255, mode="F").save(tmp_path / "bytes.tif")
    with pytest.raises(SidliteError, match="8 or 16 bits"):
        load_image(tmp_path / "bytes.tif")
