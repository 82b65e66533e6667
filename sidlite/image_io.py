"""Reading and writing images: any common file becomes a (3, H, W) float tensor in [-1, 1].

RGB, RGBA (composited over white, with a warning), grayscale, palette and 16-bit files are accepted;
photographs are turned upright as their EXIF orientation says.
Saving rounds to 8 bits and refuses to overwrite an existing file unless asked.
"""
from __future__ import annotations

import math
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from .errors import SidliteError, check, is_whole, user_stacklevel

#: Values converted at once by :func:`to_uint8` (32 MB of float32).
UINT8_BLOCK_VALUES = 2 ** 23
#: Values of an input converted to float32 at once while it is shrunk on reading (16 MB).
READ_BAND_VALUES = 2 ** 22
#: How far a float array may stray outside [0, 1] (a resampler's overshoot, clipped) before it is refused as
#: data on another scale (0-255, or [-1, 1]).
ARRAY_SLACK = 0.25
#: The largest magnitude a float image tensor may hold: images lie in [-1, 1] and latents within a few units,
#: so anything past this is 0-255 data passed without conversion.
MAX_TENSOR_VALUE = 32.0


def _check_unit_range(array: np.ndarray, taken_as: str, advice: str) -> None:
    """Refuse float data read as [0, 1] that strays past :data:`ARRAY_SLACK` of it (0-255, or [-1, 1])."""
    low, high = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    check(-ARRAY_SLACK <= low and high <= 1 + ARRAY_SLACK,
          f"{taken_as}, but this one spans [{low:g}, {high:g}]; {advice}")


def _array_to_unit(array: np.ndarray) -> np.ndarray:
    """An (H, W), (H, W, 3) or (H, W, 4) array of any integer or float type as float64 RGB in [0, 1]."""
    if array.dtype == np.bool_:
        array = array.astype(np.float64)
    elif np.issubdtype(array.dtype, np.integer):
        array = array.astype(np.float64) / (65535.0 if array.dtype.itemsize >= 2 and array.max(initial=0) > 255 else 255.0)
    else:
        array = array.astype(np.float64)
        check(np.isfinite(array).all(), "the image contains NaN or infinite values")
        _check_unit_range(array, "a float image array is taken as [0, 1] (as scikit-image and matplotlib write "
                                 "them)", "divide 0-255 data by 255, or pass [-1, 1] data as a torch tensor")
        array = np.clip(array, 0.0, 1.0)  # a resampler's small overshoot
    if array.ndim == 2:
        array = np.repeat(array[..., None], 3, axis=2)
    check(array.ndim == 3 and array.shape[2] in (1, 3, 4),
          f"expected an image array of shape (H, W), (H, W, 3) or (H, W, 4), got {array.shape}")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if array.shape[2] == 4:
        alpha = array[..., 3:]
        if (alpha < 1).any():
            warnings.warn("the image has transparency; it was composited over white", stacklevel=3)
        array = array[..., :3] * alpha + (1.0 - alpha)
    return array


def _pil_pixels(image: Image.Image) -> tuple[Image.Image | np.ndarray, Callable[[np.ndarray], torch.Tensor]]:
    """The image's pixels, as a Pillow image of 8-bit channels or else an (H, W) float64 array in [0, 1] (16-bit
    files, scaled by the whole image's range so that every band is scaled alike), and the function that makes
    any band of them (:func:`_band`) a (3, h, w) float32 tensor in [-1, 1]: 8-bit data stays 8-bit until then."""
    if image.mode in ("RGB", "L"):
        return image, _bytes_to_tensor
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        array = np.asarray(image, dtype=np.float64)
        return array / (65535.0 if array.max(initial=0) > 255 else 255.0), _array_to_tensor
    if image.mode == "F":  # 32-bit float samples, taken as [0, 1] as float arrays are
        array = np.asarray(image, dtype=np.float64)
        _check_unit_range(array, "a 32-bit float image file is read as [0, 1]", "save it with 8 or 16 bits a channel")
        return array, _array_to_tensor
    if image.mode == "P":
        image = image.convert("RGBA")
    elif image.mode not in ("RGB", "RGBA", "L", "LA"):
        image = image.convert("RGBA" if "A" in image.mode else "RGB")
    if image.mode == "LA":
        image = image.convert("RGBA")
    return image, _array_to_tensor


def _band(pixels: Image.Image | np.ndarray, rows: slice = slice(None), cols: slice = slice(None)) -> np.ndarray:
    """An (h, w[, C]) array of ``pixels``' given rows and columns, copied out of a Pillow image one band at a time."""
    if isinstance(pixels, np.ndarray):
        return pixels[rows, cols]
    top, bottom, _ = rows.indices(pixels.height)
    left, right, _ = cols.indices(pixels.width)
    return np.asarray(pixels.crop((left, top, right, bottom)))


def _array_to_tensor(array: np.ndarray) -> torch.Tensor:
    return _unit_to_tensor(_array_to_unit(array))


def _unit_to_tensor(array: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))).float() * 2 - 1


#: uint8 value -> its [-1, 1] float32, the same numbers as the float64 path gives, at 4 bytes a value.
_BYTE_TO_UNIT = ((torch.from_numpy(np.arange(256) / 255.0).float()) * 2 - 1).numpy()


def _bytes_to_tensor(array: np.ndarray) -> torch.Tensor:
    """An 8-bit (H, W) or (H, W, 3) array straight to a (3, H, W) [-1, 1] tensor: no float64 copy, so
    inputs of hundreds of megapixels load in 12 bytes a pixel."""
    planes = [array] * 3 if array.ndim == 2 else [array[..., c] for c in range(3)]
    return torch.from_numpy(np.stack([_BYTE_TO_UNIT[p] for p in planes]))


@contextmanager
def _no_pixel_limit():
    """Lift Pillow's decompression-bomb limit for this one call: gigapixel inputs are the point here,
    and the process-wide setting is left as the caller had it."""
    limit = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = limit


def load_image(path, max_side: int | None = None) -> torch.Tensor:
    """Read an image file as a (3, H, W) float32 tensor in [-1, 1], optionally shrunk so its long side is
    at most ``max_side`` (antialiased; shrunk band by band as it is converted, see :func:`_shrunk_on_reading`)."""
    path = Path(path)
    if not path.exists():
        raise SidliteError(f"image file not found: {path}; check the path")
    if path.is_dir():
        raise SidliteError(f"{path} is a folder, not an image file")
    try:
        with _no_pixel_limit(), Image.open(path) as handle:
            handle.load()
            pixels, to_tensor = _pil_pixels(_upright(handle, in_place=True))
            if max_side is None:
                return to_tensor(_band(pixels))
            check(max_side >= 1, f"max_side must be positive, got {max_side}")
            return _shrunk_on_reading(pixels, to_tensor, max_side)
    except (UnidentifiedImageError, OSError) as error:
        raise SidliteError(f"cannot read {path} as an image ({error}); use a PNG or JPEG file") from None


def image_size(path) -> tuple[int, int]:
    """(H, W) of an image file as :func:`load_image` reads it (upright, before any shrink), without decoding it."""
    try:
        with _no_pixel_limit(), Image.open(path) as handle:
            width, height = handle.size
            turned = _orientation(handle) in (5, 6, 7, 8)  # a quarter turn
    except (UnidentifiedImageError, OSError) as error:
        raise SidliteError(f"cannot read {path} as an image ({error}); use a PNG or JPEG file") from None
    return (width, height) if turned else (height, width)


def _orientation(image: Image.Image) -> int:
    """The EXIF orientation tag (1: upright, 3: upside down, 5-8: a quarter turn, mirrored or not)."""
    return image.getexif().get(ExifTags.Base.Orientation, 1)


def _upright(image: Image.Image, in_place: bool = False) -> Image.Image:
    """The photograph turned as its EXIF orientation tag says (in place, or a turned copy; the image itself
    when it has no turn to make): cameras and phones store portraits sideways with a tag, and every
    viewer shows them upright."""
    if _orientation(image) == 1:
        return image
    if in_place:
        ImageOps.exif_transpose(image, in_place=True)
        return image
    return ImageOps.exif_transpose(image)


def _shrunk_on_reading(pixels, to_tensor, max_side: int) -> torch.Tensor:
    """:func:`shrink_to` of the whole converted image, without it: the first pass of the resize
    (:func:`~sidlite.pyramid.resize_order`) shortens one axis of each band of the other, copied out and
    converted just before (:data:`READ_BAND_VALUES` floats), and the second pass runs on the result. Each
    output of a pass reads only its own row or column, so the pixels are those of the whole-image resize.
    A 6144² photograph shrunk to 256 took 1.1 GB more when it was converted whole."""
    from .pyramid import resize_axis, resize_order

    height, width = pixels.shape[:2] if isinstance(pixels, np.ndarray) else (pixels.height, pixels.width)
    size = shrunk_size(height, width, max_side)
    if size == (height, width):
        return to_tensor(_band(pixels))
    (first, first_size), (second, second_size) = resize_order((height, width), size)
    by_rows = first == -1  # the width is shortened first: bands of rows; else bands of columns
    step = max(1, READ_BAND_VALUES // (3 * (width if by_rows else height)))
    middle = torch.empty((3, height, first_size) if by_rows else (3, first_size, width))
    for start in range(0, height if by_rows else width, step):
        band = slice(start, start + step)
        piece = _band(pixels, rows=band) if by_rows else _band(pixels, cols=band)
        target = middle[:, band] if by_rows else middle[:, :, band]
        target.copy_(resize_axis(to_tensor(piece), first, first_size))
    return resize_axis(middle, second, second_size).clamp_(-1, 1)


def shrunk_size(height: int, width: int, max_side: int) -> tuple[int, int]:
    """(H, W) with the long side at most ``max_side``, the aspect ratio kept (unchanged if already smaller)."""
    factor = max_side / max(height, width)
    if factor >= 1:
        return height, width
    return max(1, round(height * factor)), max(1, round(width * factor))


def shrink_to(image: torch.Tensor, max_side: int) -> torch.Tensor:
    """Resize so the long side is at most ``max_side`` (no-op if already smaller), clamped to [-1, 1]: the
    resize's kernel rings past the input's range at sharp edges, and an image is promised in [-1, 1]."""
    from .pyramid import resize

    check(is_whole(max_side) and max_side >= 1, f"max_side must be a whole number >= 1, got {max_side!r}")
    size = shrunk_size(*image.shape[-2:], max_side)
    if size == tuple(image.shape[-2:]):
        return image
    return resize(image, size).clamp_(-1, 1)


#: Tensors already noted as [0, 1] data (:func:`as_image`), by id: an image passes through several layers.
_NOTED_UNIT_RANGE: "weakref.WeakValueDictionary[int, torch.Tensor]" = weakref.WeakValueDictionary()


def as_image(source) -> torch.Tensor:
    """A (C, H, W) float32 tensor in [-1, 1] from a path, a PIL image, an (H, W[, C]) array or a tensor.

    Float tensors are taken as already in [-1, 1] (a leading batch dimension of 1 is dropped) and computed
    in float32 whatever their float type, so a seed gives the same sample from a float64 copy; integer
    tensors are refused, since 0-255 and [-1, 1] data would both pass (an 8-bit array is read as 0-255).
    """
    if isinstance(source, (str, Path)):
        return load_image(source)
    if isinstance(source, Image.Image):
        pixels, to_tensor = _pil_pixels(_upright(source))
        return to_tensor(_band(pixels))
    if isinstance(source, np.ndarray):
        return _unit_to_tensor(_array_to_unit(source))
    if isinstance(source, torch.Tensor):
        if source.dim() == 4 and source.shape[0] == 1:
            source = source[0]
        check(source.dim() == 3, f"expected a (C, H, W) tensor, got shape {tuple(source.shape)}")
        check(not (source.shape[2] in (1, 3, 4) and source.shape[0] > 4),
              f"the tensor {tuple(source.shape)} looks like (H, W, C); pass (C, H, W) (x.permute(2, 0, 1)) or a "
              f"numpy (H, W, C) array")
        low, high = check_tensor_values(source)
        image = source.float()
        if 0 <= low < high <= 1 and _NOTED_UNIT_RANGE.get(id(source)) is not source:  # once per tensor, not per layer
            warnings.warn("the image tensor has no value below 0: sidlite's images are in [-1, 1], so [0, 1] data "
                          "(torchvision's ToTensor) comes out washed out; convert it with x * 2 - 1",
                          stacklevel=user_stacklevel())
            _NOTED_UNIT_RANGE.update({id(source): source, id(image): image})
        return image
    raise SidliteError(f"cannot use a {type(source).__name__} as an image; pass a path, array, PIL image or tensor")


def to_uint8(image: torch.Tensor) -> np.ndarray:
    """A [-1, 1] (C, H, W) tensor as a contiguous (H, W, C) uint8 array, rounded (a one-channel image as
    (H, W)). Converted in blocks of rows (:data:`UINT8_BLOCK_VALUES` values), so a large image never has a
    second float copy."""
    image = image.detach()
    if image.dim() == 4:
        image = image[0]
    channels, height, width = image.shape
    array = np.empty((height, width, channels), dtype=np.uint8)
    step = max(1, UINT8_BLOCK_VALUES // max(1, channels * width))
    for top in range(0, height, step):
        block = image[:, top:top + step].float().cpu().clamp(-1, 1)  # the block's one float copy
        array[top:top + step] = block.add_(1).mul_(127.5).round_().byte().permute(1, 2, 0).numpy()
    return array[..., 0] if channels == 1 else array


def to_display(image: torch.Tensor) -> np.ndarray:
    """A [-1, 1] (C, H, W) tensor as an (H, W, C) float array in [0, 1] for matplotlib."""
    return ((image.detach().float().cpu().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def check_tensor_values(tensor: torch.Tensor) -> tuple[float, float]:
    """The smallest and largest value of a float image tensor (no copy of it is made), after refusing an
    integer tensor, NaN or infinite values, and values past :data:`MAX_TENSOR_VALUE` (0-255 data)."""
    check(tensor.is_floating_point(), f"an image tensor is float in [-1, 1], got {tensor.dtype}; convert 8-bit "
                                      f"data with x / 127.5 - 1, or pass it as an (H, W, C) numpy array")
    low, high = (float(v) for v in torch.aminmax(tensor)) if tensor.numel() else (0.0, 0.0)
    check(math.isfinite(low) and math.isfinite(high), "the image tensor contains NaN or infinite values")
    check(max(-low, high) <= MAX_TENSOR_VALUE, f"the image tensor reaches {max(-low, high):g}, but images are float "
                                               f"in [-1, 1] (latents a few units); convert 0-255 data with x / 127.5 - 1")
    return low, high


def save_image(image, path, overwrite: bool = False) -> Path:
    """Write a [-1, 1] (C, H, W) tensor as an 8-bit image (values past ±1 are clipped; a numpy array or PIL
    image is read as :func:`as_image` reads it); refuse to replace a file unless ``overwrite``."""
    if isinstance(image, (np.ndarray, Image.Image)):
        image = as_image(image)
    check(isinstance(image, torch.Tensor), f"cannot save a {type(image).__name__} as an image; pass a (C, H, W) "
                                           f"tensor in [-1, 1], a numpy array or a PIL image")
    check_tensor_values(image)
    shape = tuple(image.shape[1:] if image.dim() == 4 and image.shape[0] == 1 else image.shape)
    check(len(shape) == 3 and shape[0] in (1, 3), f"an image to save is (C, H, W) with 1 or 3 channels, got {shape}")
    refuse_overwrite(path, overwrite)
    return save_array(to_uint8(image), path, overwrite)


def refuse_overwrite(path, overwrite: bool) -> None:
    """The one-line error for a file that exists and may not be replaced."""
    if Path(path).exists() and not overwrite:
        raise SidliteError(f"{path} already exists; choose another name, or allow replacing it (--overwrite on the "
                           f"command line, overwrite=True in Python)")


def save_array(array: np.ndarray, path, overwrite: bool = False) -> Path:
    """Write an (H, W, C) or (H, W) uint8 array as an image file (JPEG sides over 65,500 px become PNG);
    refuse to replace a file unless ``overwrite``. Returns the path written."""
    path = Path(path)
    refuse_overwrite(path, overwrite)
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = None
    if path.suffix.lower() in (".jpg", ".jpeg") and max(array.shape[:2]) > 65500:
        path, fmt = path.with_suffix(".png"), "PNG"  # JPEG cannot hold sides over 65,500 px
    try:
        Image.fromarray(array).save(path, format=fmt, **({"quality": 95} if path.suffix.lower() in (".jpg", ".jpeg") else {}))
    except (ValueError, KeyError) as error:
        raise SidliteError(f"cannot write {path} ({error}); use a .png or .jpg name") from None
    return path
