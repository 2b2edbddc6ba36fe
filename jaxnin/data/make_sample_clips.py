"""Sample clips: a labelled, real-video stand-in for seed 000's private sign-language data.

    python -m jaxnin.data.make_sample_clips OUT_DIR [--clips-per-class 50] [--size 64] [--seed 0]
                                            [--format auto|mp4|npy]

Writes OUT_DIR/<motion>/<motion>_NNN.mp4 (MPEG-4; or .npy arrays (T, H, W) uint8 where PyAV is
not installed, as on a bare GPU host, or with --format npy): a bright disk, square or ring on a dark,
noisy background, moving in one of eight patterns, which are the classes: left, right, up,
down, circle (clockwise as seen on screen), wave (side to side, twice), zoom_in and zoom_out.
Start
position, size, brightness, travel and length (8 to 24 frames at 12 fps) vary per clip, so a
class is a motion, not a picture: like a sign, it only shows across frames. The same seed
writes the same pixels.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

from jaxnin import files
from jaxnin.cli import command_parser, options_from, path_arg, run_main
from jaxnin.data.dataset import scratch_beside
from jaxnin.errors import JaxninError
from jaxnin.options import SEED, Range, option

MOTIONS = ("circle", "down", "left", "right", "up", "wave", "zoom_in", "zoom_out")
SHAPES = ("disk", "square", "ring")
FPS = 12
MIN_FRAMES, MAX_FRAMES = 8, 24
FORMATS = ("auto", "mp4", "npy")


def write_sample_clips(out_dir: str | os.PathLike, clips_per_class: int = 50, size: int = 64,
                       seed: int = 0, format: str = "auto") -> Path:
    """Writes the clips into `out_dir` (which must not exist yet) and returns it.

    `format` "auto" writes .mp4 where PyAV is installed and lossless .npy arrays where it is
    not, so that a host without PyAV still gets clips (same motions, same seed; the .npy
    frames are the rendered pixels, the .mp4 ones their MPEG-4 encoding). They are written
    into a temporary sibling first and renamed into place, so `out_dir` either holds every
    clip or does not exist.
    """
    writer = _clip_writer(format)
    out = Path(out_dir)
    if out.exists():
        raise JaxninError(f"{out} already exists: choose a new OUT_DIR (the clips are written "
                          "into an empty one)")
    if size < 16 or size % 2:
        raise JaxninError(f"--size must be even and at least 16 (yuv420p needs even sides), "
                          f"got {size}")
    out.parent.mkdir(parents=True, exist_ok=True)
    with scratch_beside(out, "choose an OUT_DIR in a writable folder") as work:
        rng = np.random.default_rng(seed)
        for motion in MOTIONS:
            (work / motion).mkdir()
            for number in range(clips_per_class):
                writer(work / motion / f"{motion}_{number:03d}", render_clip(motion, size, rng))
        files.move(work, out)
    return out


def render_clip(motion: str, size: int, rng: np.random.Generator) -> np.ndarray:
    """(T, size, size) uint8 frames of one shape moving as `motion` says."""
    length = int(rng.integers(MIN_FRAMES, MAX_FRAMES + 1))
    progress = np.linspace(0.0, 1.0, length)  # the motion spans the clip, whatever its length
    radius = rng.uniform(0.08, 0.14) * size
    centre, radii = _trajectory(motion, progress, radius, size, rng)
    shape = SHAPES[rng.integers(len(SHAPES))]
    background = rng.uniform(10, 60)
    brightness = rng.uniform(170, 255)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    frames = []
    for (cx, cy), r in zip(centre, radii):
        coverage = _coverage(shape, xx - cx, yy - cy, r)
        frame = background + (brightness - background) * coverage
        frames.append(frame + rng.normal(0.0, 6.0, frame.shape))
    return np.clip(np.rint(frames), 0, 255).astype(np.uint8)


def _trajectory(motion, progress, radius, size, rng):
    """Centres (T, 2) in pixels and shape radii (T,) along the clip."""
    margin = radius + 2
    constant_radius = np.full_like(progress, radius)
    if motion in ("left", "right", "up", "down"):
        travel = rng.uniform(0.35, 0.6) * size
        start_along = rng.uniform(margin, size - margin - travel)
        across = rng.uniform(margin, size - margin)
        along = start_along + travel * progress
        if motion in ("left", "up"):
            along = along[::-1]
        centre = (np.stack([along, np.full_like(along, across)], -1)
                  if motion in ("left", "right")
                  else np.stack([np.full_like(along, across), along], -1))
        return centre, constant_radius
    if motion == "circle":
        orbit = rng.uniform(0.18, 0.28) * size
        cx, cy = (rng.uniform(margin + orbit, size - margin - orbit) for _ in range(2))
        # Image y points down, so a growing angle turns clockwise on screen.
        angle = rng.uniform(0, 2 * np.pi) + rng.uniform(1.5, 2.0) * np.pi * progress
        return np.stack([cx + orbit * np.cos(angle), cy + orbit * np.sin(angle)], -1), \
            constant_radius
    if motion == "wave":
        amplitude = rng.uniform(0.15, 0.25) * size
        cx = rng.uniform(margin + amplitude, size - margin - amplitude)
        cy = rng.uniform(margin, size - margin)
        x = cx + amplitude * np.sin(2 * np.pi * 2 * progress)
        return np.stack([x, np.full_like(x, cy)], -1), constant_radius
    # zoom: the shape grows (or shrinks) in place.
    small, large = rng.uniform(0.04, 0.07) * size, rng.uniform(0.2, 0.28) * size
    radii = small + (large - small) * progress
    if motion == "zoom_out":
        radii = radii[::-1]
    cx, cy = (rng.uniform(large + 2, size - large - 2) for _ in range(2))
    return np.tile([cx, cy], (len(progress), 1)), radii


def _coverage(shape, dx, dy, r):
    """How much of each pixel the shape covers, with a one-pixel soft edge."""
    if shape == "square":
        distance = np.maximum(np.abs(dx), np.abs(dy)) - 0.8 * r
    else:
        distance = np.hypot(dx, dy) - r
    if shape == "ring":
        distance = np.abs(distance + 0.3 * r) - 0.3 * r
    return np.clip(0.5 - distance, 0.0, 1.0)


def _clip_writer(format: str):
    """(path without suffix, frames) -> None for `format`; fails before anything is written."""
    if format not in FORMATS:
        raise JaxninError(f"--format {format!r}: choose one of {', '.join(FORMATS)}")
    if format != "npy":
        try:
            import av  # noqa: F401
        except ImportError:
            if format == "mp4":
                raise JaxninError("--format mp4 needs PyAV: pip install av (or use --format "
                                  "npy)") from None
            format = "npy"
    if format == "npy":
        return lambda stem, frames: np.save(stem.with_suffix(".npy"), frames)
    return lambda stem, frames: write_video(stem.with_suffix(".mp4"), frames)


def write_video(path: Path, frames: np.ndarray, fps: int = FPS) -> None:
    """(T, H, W) uint8 gray frames -> an MPEG-4 .mp4 (yuv420p).

    ffmpeg's own mpeg4 encoder on one thread writes the same bytes every time; x264 does
    not (its lookahead), and a seed must give the same files.
    """
    import av

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.codec_context.thread_count = 1
        for gray in frames:
            rgb = np.repeat(gray[..., None], 3, axis=-1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())  # flush the encoder


@dataclasses.dataclass(frozen=True)
class SampleClipOptions:
    """The command's options, each with its range (OUT_DIR is its positional argument)."""
    # Upper bounds against a typo's extra digits, not limits of the code: the default (50 a
    # class, 64 pixels) writes 400 clips in seconds. A class needs two clips, one for
    # training and one for testing; 10,000 a class is 80,000 clips (minutes, and GBs of .npy
    # at 64 pixels).
    clips_per_class: int = option(50, "clips of each motion", within=Range(2, 10_000))
    # yuv420p halves each side: at least 16, and even (a separate check, in
    # write_sample_clips). 1024 pixels a side is 256 times the default's pixels: about a
    # second and 17 MB of .npy a clip; larger frames are no longer a sample.
    size: int = option(64, "frame side in pixels, even", within=Range(16, 1024))
    seed: int = option(0, "the same seed writes the same pixels", within=SEED)
    format: str = option("auto", "mp4 needs PyAV; npy writes (T, H, W) uint8 arrays; auto: mp4 "
                         "where PyAV is installed", choices=FORMATS)


def parser() -> argparse.ArgumentParser:
    p = command_parser("python -m jaxnin.data.make_sample_clips", __doc__, SampleClipOptions())
    p.add_argument("out_dir", type=path_arg, help="a new folder for the clips")
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    options = options_from(SampleClipOptions, args)  # every value in its range, before any file
    out = write_sample_clips(args.out_dir, options.clips_per_class, options.size, options.seed,
                             options.format)
    print(f"wrote {options.clips_per_class * len(MOTIONS)} clips in {len(MOTIONS)} classes to "
          f"{out}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(main))
