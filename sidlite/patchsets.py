"""Patch sets: the dataset a backend denoises against, without an (N, D) copy of an image's patches.

A patch set is N vectors of length D that a backend can

* ``gather(rows)``: the (len(rows), D) patches at those row indices,
* ``chunks(rows)``: walk the set in contiguous row blocks of about ``rows`` patches, as (start, block),
* ``mean()`` and ``sq_norms()``: the mean patch (D,) and every patch's squared norm (N,),
* ``dense()``: the whole (N, D) matrix, for small sets and the naive reference.

:class:`DensePatchSet` wraps a matrix (toy data, chapter 01); :class:`SubsetPatchSet` is some rows of another
set (a k-means cell). :class:`ImagePatchSet` is backed by one or
more level images and gathers patches on demand from a strided view; its statistics come from box
filters over the image, so building it costs O(pixels), not O(N·D). Rows are ordered image by image,
then row-major by a patch's top-left corner, the order of :func:`sidlite.patches.extract_patches`; a
``keep`` mask per image leaves some positions out (inpainting keeps only patches in the known region).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator, Sequence

import torch
import torch.nn.functional as F

from .errors import check
from .patches import patch_grid


class PatchSet(ABC):
    """N patches of length D on one device, read in blocks or by index."""

    @property
    @abstractmethod
    def size(self) -> int:
        """N, the number of patches."""

    @property
    @abstractmethod
    def dim(self) -> int:
        """D, the length of one patch."""

    @property
    @abstractmethod
    def dtype(self) -> torch.dtype: ...

    @property
    @abstractmethod
    def device(self) -> torch.device: ...

    @abstractmethod
    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """The patches at ``rows`` (a 1-D index tensor) as a (len(rows), D) tensor."""

    @abstractmethod
    def sq_norms(self) -> torch.Tensor:
        """‖y_i‖² of every patch, (N,) float32."""

    def mean(self) -> torch.Tensor:
        """The mean patch (D,), accumulated in float64 block by block, returned in the set's dtype."""
        total = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        for _, block in self.chunks(max(1, 2 ** 22 // self.dim)):
            total += block.double().sum(0)
        return (total / self.size).to(self.dtype)

    def chunks(self, rows: int) -> Iterator[tuple[int, torch.Tensor]]:
        """Contiguous blocks (start, patches[start:start + n]) of about ``rows`` patches covering the set."""
        check(rows >= 1, f"a chunk holds at least one patch, got {rows}")
        for start in range(0, self.size, rows):
            stop = min(start + rows, self.size)
            yield start, self.gather(torch.arange(start, stop, device=self.device))

    def dense(self) -> torch.Tensor:
        """All patches as one (N, D) tensor (allocates N·D values: for small sets)."""
        return torch.cat([block for _, block in self.chunks(max(1, 2 ** 24 // max(1, self.dim)))])

    @property
    def nbytes(self) -> int:
        """What a dense copy of the set would occupy."""
        return self.size * self.dim * torch.finfo(self.dtype).bits // 8

    def __len__(self) -> int:
        return self.size

    def __repr__(self) -> str:
        return f"{type(self).__name__}(N={self.size}, d={self.dim})"


class DensePatchSet(PatchSet):
    """A patch set that is an (N, D) matrix in memory."""

    def __init__(self, patches: torch.Tensor):
        check(isinstance(patches, torch.Tensor) and patches.dim() == 2 and patches.shape[0] >= 1,
              f"a patch set needs an (N, D) tensor with N >= 1, got {getattr(patches, 'shape', type(patches))}")
        check(bool(torch.isfinite(patches).all()), "the patch dataset contains NaN or infinite values")
        self.patches = patches.contiguous()
        self._sq_norms: torch.Tensor | None = None

    size = property(lambda self: self.patches.shape[0])
    dim = property(lambda self: self.patches.shape[1])
    dtype = property(lambda self: self.patches.dtype)
    device = property(lambda self: self.patches.device)

    def gather(self, rows):
        return self.patches.index_select(0, rows.to(self.device))

    def chunks(self, rows):
        check(rows >= 1, f"a chunk holds at least one patch, got {rows}")
        for start in range(0, self.size, rows):
            yield start, self.patches[start:start + rows]

    def dense(self):
        return self.patches

    def sq_norms(self):
        """‖y_i‖² in float64, block by block: a float64 copy of the whole set (twice its size, and its square
        again) was the largest transient of a projected index's build (409 MB at 130k patches of 147)."""
        if self._sq_norms is None:
            norms = torch.empty(self.size, dtype=torch.float32, device=self.device)
            for start, block in self.chunks(max(1, 2 ** 22 // self.dim)):
                norms[start:start + block.shape[0]] = (block.double() ** 2).sum(1)
            self._sq_norms = norms
        return self._sq_norms


class ImagePatchSet(PatchSet):
    """Every P×P patch (stride ``stride``) of one or more (C, H, W) images, gathered on demand.

    ``images`` is a (C, H, W) tensor, a (K, C, H, W) stack or a list of tensors with the same channel
    count (a patch set over several images, as in chapter 13); images of one shape are kept as one
    stack, so gathering from thousands of them is one indexing operation. ``keep`` is None or one boolean (rows, cols) grid per image marking
    which patch positions belong to the set. Nothing of size N·D is stored: the set holds the images,
    the kept positions (when a mask is given) and, once asked for, the N squared norms.
    """

    def __init__(self, images: torch.Tensor | Sequence[torch.Tensor], patch_size: int, stride: int = 1,
                 keep: Sequence[torch.Tensor] | torch.Tensor | None = None):
        if isinstance(images, torch.Tensor):
            images = [images] if images.dim() == 3 else list(images.unbind(0))
        check(len(images) >= 1, "a patch set needs at least one image")
        for image in images:
            check(isinstance(image, torch.Tensor) and image.dim() == 3,
                  f"expected (C, H, W) images, got {getattr(image, 'shape', type(image))}")
        check(len({(im.shape[0], im.dtype, im.device) for im in images}) == 1,
              "the images of one patch set need the same channel count, dtype and device")
        for image in images:
            check(bool(torch.isfinite(image).all()), "the image contains NaN or infinite values")
        self.images = [im.contiguous() for im in images]
        self.patch_size, self.stride = patch_size, stride
        same_shape = len({tuple(im.shape) for im in images}) == 1
        self.stack = torch.stack(self.images) if same_shape and len(images) > 1 else None
        self.grids = [patch_grid(im.shape[1], im.shape[2], patch_size, stride) for im in images]
        if keep is not None:
            keep = [keep] if isinstance(keep, torch.Tensor) else list(keep)
            check(len(keep) == len(images), "keep needs one mask per image")
            for mask, grid in zip(keep, self.grids):
                check(tuple(mask.shape) == grid, f"a keep mask must be the patch grid {grid}, got {tuple(mask.shape)}")
            # positions[i] = flat position (in the concatenated grids) of kept patch i
            self.positions = torch.cat([m.reshape(-1).nonzero()[:, 0] + off for m, off in
                                        zip(keep, self._grid_offsets()[:-1])]).to(self.device)
            check(self.positions.numel() >= 1, "the keep masks leave no patch in the set")
        else:
            self.positions = None
        self._sq_norms: torch.Tensor | None = None

    def _grid_offsets(self) -> list[int]:
        offsets = [0]
        for rows, cols in self.grids:
            offsets.append(offsets[-1] + rows * cols)
        return offsets

    @property
    def size(self) -> int:
        return self.positions.numel() if self.positions is not None else self._grid_offsets()[-1]

    @property
    def dim(self) -> int:
        return self.images[0].shape[0] * self.patch_size ** 2

    dtype = property(lambda self: self.images[0].dtype)
    device = property(lambda self: self.images[0].device)

    def _stack_windows(self) -> torch.Tensor:
        """(K, rows, cols, C, P, P) strided view of the stacked images' patches."""
        p, s = self.patch_size, self.stride
        return self.stack.unfold(2, p, s).unfold(3, p, s).permute(0, 2, 3, 1, 4, 5)

    def _windows(self, index: int) -> torch.Tensor:
        """(rows, cols, C, P, P) strided view of image ``index``'s patches."""
        p, s = self.patch_size, self.stride
        return self.images[index].unfold(1, p, s).unfold(2, p, s).permute(1, 2, 0, 3, 4)

    def gather(self, rows):
        rows = rows.to(self.device).long()
        flat = self.positions[rows] if self.positions is not None else rows
        offsets = self._grid_offsets()
        if len(self.images) == 1:
            cols = self.grids[0][1]
            return self._windows(0)[flat // cols, flat % cols].reshape(rows.numel(), self.dim)
        if self.stack is not None:
            per_image, cols = offsets[1], self.grids[0][1]
            local = flat % per_image
            return self._stack_windows()[flat // per_image, local // cols, local % cols].reshape(rows.numel(), self.dim)
        out = torch.empty(rows.numel(), self.dim, dtype=self.dtype, device=self.device)
        which = torch.bucketize(flat, torch.tensor(offsets[1:-1], device=self.device), right=True)
        for index in range(len(self.images)):
            picked = (which == index).nonzero()[:, 0]
            if picked.numel():
                local = flat[picked] - offsets[index]
                cols = self.grids[index][1]
                out[picked] = self._windows(index)[local // cols, local % cols].reshape(picked.numel(), self.dim)
        return out

    def chunks(self, rows):
        """Blocks of whole patch-grid rows cut straight from the image (no index arithmetic)."""
        check(rows >= 1, f"a chunk holds at least one patch, got {rows}")
        if self.positions is not None or len(self.images) > 1:
            yield from super().chunks(rows)
            return
        grid_rows, cols = self.grids[0]
        band = max(1, rows // cols)
        windows = self._windows(0)
        for top in range(0, grid_rows, band):
            block = windows[top:top + band]
            yield top * cols, block.reshape(block.shape[0] * cols, self.dim)

    def _box_sums(self, image: torch.Tensor, power: int) -> torch.Tensor:
        """Σ over each patch window of image**power, per channel: (C, rows, cols) float64."""
        values = image.double() ** power
        p, s = self.patch_size, self.stride
        return F.avg_pool2d(values[None], p, stride=s)[0] * (p * p)

    def sq_norms(self):
        """‖y_i‖² from box sums of the squared image(s) in float64, returned as float32."""
        if self._sq_norms is None:
            if self.stack is not None:  # one pooling call for the whole stack
                p, s = self.patch_size, self.stride
                norms = (F.avg_pool2d(self.stack.double() ** 2, p, stride=s) * (p * p)).sum(1).reshape(-1)
            else:
                norms = torch.cat([self._box_sums(im, 2).sum(0).reshape(-1) for im in self.images])
            if self.positions is not None:
                norms = norms[self.positions]
            self._sq_norms = norms.float()
        return self._sq_norms

    def mean(self):
        """Mean patch: each of its C·P² entries is the mean of one shifted window of the image(s)."""
        p, s = self.patch_size, self.stride
        total = torch.zeros(self.dim, dtype=torch.float64, device=self.device)
        if self.positions is None and self.stack is not None:
            rows, cols = self.grids[0]
            for dy in range(p):
                for dx in range(p):
                    window = self.stack[:, :, dy:dy + s * (rows - 1) + 1:s, dx:dx + s * (cols - 1) + 1:s]
                    total.view(-1, p, p)[:, dy, dx] += window.double().sum((0, 2, 3))
            return (total / self.size).to(self.dtype)
        if self.positions is None:
            for image, (rows, cols) in zip(self.images, self.grids):
                # entry (c, dy, dx) sums image[c, dy + s·r, dx + s·q] over the patch grid
                for dy in range(p):
                    for dx in range(p):
                        window = image[:, dy:dy + s * (rows - 1) + 1:s, dx:dx + s * (cols - 1) + 1:s]
                        total.view(-1, p, p)[:, dy, dx] += window.double().sum((1, 2))
            return (total / self.size).to(self.dtype)
        return super().mean()  # a keep mask: through the kept patches


class SubsetPatchSet(PatchSet):
    """The patches of ``base`` at ``rows`` (1-D, no repeats), read through it: one k-means cell of a large
    set without a copy of its patches."""

    def __init__(self, base: PatchSet, rows: torch.Tensor):
        check(rows.dim() == 1 and rows.numel() >= 1, "a subset of a patch set needs a non-empty 1-D index")
        self.base, self.rows = base, rows.to(base.device)

    size = property(lambda self: self.rows.shape[0])
    dim = property(lambda self: self.base.dim)
    dtype = property(lambda self: self.base.dtype)
    device = property(lambda self: self.base.device)

    def gather(self, rows):
        return self.base.gather(self.rows[rows.to(self.device)])

    def sq_norms(self):
        return self.base.sq_norms()[self.rows]


def as_patch_set(data: PatchSet | torch.Tensor) -> PatchSet:
    """A patch set from a patch set (unchanged) or an (N, D) tensor (wrapped, not copied)."""
    return data if isinstance(data, PatchSet) else DensePatchSet(data)


__all__ = ["PatchSet", "DensePatchSet", "ImagePatchSet", "SubsetPatchSet", "as_patch_set"]
