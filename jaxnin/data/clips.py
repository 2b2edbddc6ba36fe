"""One clip -> one frame stack: (size, size, frames) uint8, in NumPy.

A clip is a `.npy`/`.npz` array (T, H, W) or (T, H, W, C), a folder of frame images, or a
video file. Every format takes the same path: `frames` frames sampled uniformly over the clip,
each converted to grayscale with Pillow's "L" weights and bilinearly resized with the very
weights the device pipeline uses (jax.image.resize's), so a stack decoded at 64 and resized
to 67 on the device matches one decoded at 67 up to rounding.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Iterator

import numpy as np

from jaxnin.errors import JaxninError

ARRAY_SUFFIXES = (".npy", ".npz")
VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mov", ".mkv", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp")
# The array names an .npz with several arrays may use for its frames.
NPZ_KEYS = ("frames", "video", "clip")


class UnreadableClip(Exception):
    """A clip that cannot be decoded; the message says why (the caller names the file)."""


def is_clip(path: Path) -> bool:
    """Whether `path` looks like a clip by its kind: a folder, or a known array/video suffix."""
    return path.is_dir() or path.suffix.lower() in ARRAY_SUFFIXES + VIDEO_SUFFIXES


def frame_stack(path: Path, frames: int, size: int) -> tuple[np.ndarray, int]:
    """(size, size, frames) uint8 grayscale stack of the clip at `path`, and its frame count.

    Raises UnreadableClip when the clip cannot be decoded or holds no frames.
    """
    if path.is_dir():
        gray, length = _frame_folder(path, frames)
    elif path.suffix.lower() in ARRAY_SUFFIXES:
        gray, length = _array_clip(path, frames)
    else:
        # A video is read front to back anyway; frames are made small as they arrive.
        # (Headers carry no reliable frame count, so the whole video is decoded.)
        small = np.stack(list(_video_frames(path, size)))
        length = len(small)
        gray = small[sample_indices(length, frames)]
    return np.moveaxis(resize_frames(gray, size), 0, -1), length


# ---------------------------------------------------------------------------
# The frame arithmetic, shared by every format.


def sample_indices(length: int, frames: int) -> np.ndarray:
    """`frames` indices spread uniformly over a clip of `length` frames.

    Index i is the middle frame of the i-th of `frames` equal segments; a clip shorter than
    `frames` gives all of its frames, then repeats its last one.
    """
    if length >= frames:
        return (2 * np.arange(frames) + 1) * length // (2 * frames)
    return np.minimum(np.arange(frames), length - 1)


def to_gray(frames: np.ndarray) -> np.ndarray:
    """uint8 (..., H, W, 3) RGB -> (..., H, W) luma, exactly as Pillow's convert("L")."""
    rgb = frames.astype(np.uint32)
    luma = rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000
    return (luma >> 16).astype(np.uint8)


def resize_frames(gray: np.ndarray, size: int) -> np.ndarray:
    """uint8 (T, H, W) -> (T, size, size): bilinear, antialiased, rounded to the nearest value."""
    if gray.shape[1:] == (size, size):
        return gray
    rows, cols = bilinear_weights(gray.shape[1], size), bilinear_weights(gray.shape[2], size)
    resized = rows @ gray.astype(np.float32) @ cols.T  # (size, H) @ (T, H, W) @ (W, size)
    return np.clip(np.rint(resized), 0, 255).astype(np.uint8)


@lru_cache(maxsize=None)
def bilinear_weights(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) weights of jax.image.resize's "bilinear" (half-pixel, antialiased).

    A NumPy port of jax's compute_weight_mat, so that the loader needs no JAX: a triangle
    kernel, widened by the scale when shrinking, each row normalised to sum to one.
    """
    scale = out_size / in_size
    kernel_scale = max(1.0 / scale, 1.0)
    centres = (np.arange(out_size, dtype=np.float64) + 0.5) / scale - 0.5
    distance = np.abs(centres[:, None] - np.arange(in_size)[None, :]) / kernel_scale
    weights = np.maximum(0.0, 1.0 - distance)
    return (weights / weights.sum(axis=1, keepdims=True)).astype(np.float32)


# ---------------------------------------------------------------------------
# Formats.


def _array_clip(path: Path, frames: int) -> tuple[np.ndarray, int]:
    array = _load_array(path)
    if array.ndim not in (3, 4) or 0 in array.shape:
        raise UnreadableClip(f"an array of shape {array.shape}, not (T, H, W) or (T, H, W, C)")
    if array.ndim == 4 and array.shape[-1] not in (1, 3, 4):
        raise UnreadableClip(f"{array.shape[-1]} channels in shape {array.shape}; "
                             "expected 1 (gray), 3 (RGB) or 4 (RGBA)")
    length = array.shape[0]
    picked = _as_uint8(np.asarray(array[sample_indices(length, frames)]))
    if picked.ndim == 4:
        picked = picked[..., 0] if picked.shape[-1] == 1 else to_gray(picked[..., :3])
    return picked, length


def _load_array(path: Path) -> np.ndarray:
    try:
        if path.suffix.lower() == ".npy":
            return np.load(path, mmap_mode="r", allow_pickle=False)
        with np.load(path, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if len(keys) == 1:
                return npz[keys[0]]
            key = next((k for k in NPZ_KEYS if k in keys), None)
            if key is None:
                raise UnreadableClip(f"an .npz with arrays {keys}: keep one array, or name "
                                     f"the frames one of {', '.join(NPZ_KEYS)}")
            return npz[key]
    except UnreadableClip:
        raise
    except Exception as err:  # noqa: BLE001 -- numpy raises many kinds for a damaged file
        raise UnreadableClip(f"not a readable NumPy file ({type(err).__name__}: "
                             f"{_first_line(err)})") from None


def _as_uint8(array: np.ndarray) -> np.ndarray:
    """uint8 as is; bool as 0/255; other integers in 0..255; floats in [0, 1] scaled by 255."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.integer):
        if array.min() < 0 or array.max() > 255:
            raise UnreadableClip(f"{array.dtype} values {array.min()}..{array.max()} fall "
                                 "outside 0..255")
        return array.astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.all(np.isfinite(array)) or array.min() < 0 or array.max() > 1:
            raise UnreadableClip(f"{array.dtype} values must be finite and in [0, 1] "
                                 f"(got {np.nanmin(array)}..{np.nanmax(array)})")
        return np.rint(array * 255).astype(np.uint8)
    raise UnreadableClip(f"dtype {array.dtype} is not an image type")


def frame_files(folder: Path) -> list[Path]:
    """The frame images in `folder`, in natural order (frame2 before frame10)."""
    files = [p for p in folder.iterdir()
             if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES]
    return sorted(files, key=_natural_key)


def _natural_key(path: Path) -> list:
    return [int(part) if part.isdigit() else part.lower()
            for part in re.split(r"(\d+)", path.name)]


def _frame_folder(folder: Path, frames: int) -> tuple[np.ndarray, int]:
    files = frame_files(folder)
    if not files:
        raise UnreadableClip(f"a folder without frame images ({' '.join(IMAGE_SUFFIXES)})")
    picks = sample_indices(len(files), frames)
    loaded = {i: _read_image(files[i]) for i in np.unique(picks)}  # short clips repeat frames
    sizes = {image.shape for image in loaded.values()}
    if len(sizes) > 1:
        # Each frame is resized on its own later, but a clip's frames should agree.
        raise UnreadableClip(f"frames of different sizes {sorted(sizes)}")
    return np.stack([loaded[i] for i in picks]), len(files)


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.mode == "L":
                return np.asarray(image, dtype=np.uint8)
            return to_gray(np.asarray(image.convert("RGB"), dtype=np.uint8))
    except (OSError, UnidentifiedImageError, ValueError) as err:
        raise UnreadableClip(f"frame {path.name} is not a readable image "
                             f"({_first_line(err)})") from None


def _video_frames(path: Path, size: int) -> Iterator[np.ndarray]:
    """Each decoded frame, as a grayscale (size, size) array, so a long video stays small."""
    try:
        import av
    except ImportError:
        raise JaxninError(f"{path}: decoding video needs PyAV: pip install av "
                          "(or convert the clips to .npy arrays or frame folders)") from None
    count = 0
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise UnreadableClip("a file without a video stream")
            stream = container.streams.video[0]
            for frame in container.decode(stream):
                rgb = frame.to_ndarray(format="rgb24")
                yield resize_frames(to_gray(rgb)[None], size)[0]
                count += 1
    except UnreadableClip:
        raise
    except (av.error.FFmpegError, OSError, ValueError, EOFError) as err:
        raise UnreadableClip(f"not a decodable video ({_first_line(err)})") from None
    if count == 0:
        raise UnreadableClip("a video with no frames")


def _first_line(err: BaseException) -> str:
    return (str(err).splitlines() or [type(err).__name__])[0]
