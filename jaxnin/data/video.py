"""Labelled clips as an ImageDataset of frame stacks (N, size, size, frames) uint8, in NumPy.

    root/<label>/<clip>                      split by `test_ratio`, seeded by `split_seed`
    root/train/<label>/<clip>, root/test/... the split as given

A clip is a .npy/.npz array, a folder of frame images or a video file (jaxnin.data.clips).
Labels are the sorted names of the class folders that hold at least one readable clip.
With no root, the sample clips (jaxnin.data.make_sample_clips) are written once into the
cache and used.

Decoded stacks are cached as one .npy per split under `<cache>/video/<key>/`, read back
memory-mapped; the key covers the settings and every source file's path, size and mtime, so
a changed, added or removed clip invalidates it. Everything the loader skips (a file that is
not a clip, an empty class folder, an unreadable clip) is reported as one line with a count.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import shutil
import time
from pathlib import Path

import numpy as np

from jaxnin import files
from jaxnin.data import clips
from jaxnin.data.dataset import ImageDataset, resolve_cache_dir, scratch_beside
from jaxnin.errors import JaxninError
from jaxnin.options import SEED, Range, check_values, option

log = logging.getLogger(__name__)

NAME = "video"
DEFAULT_FRAMES = 16
DEFAULT_SIZE = 112
DEFAULT_TEST_RATIO = 0.2
DEFAULT_SPLIT_SEED = 0
SPLITS = ("train", "test")
SAMPLE_CLIPS = "sample_clips_v1"  # bump when make_sample_clips changes what it writes
_CACHE_FORMAT = 1  # bump when the cache layout changes
_LAYOUT_HINT = "put each clip in root/<label>/ (or root/train/<label>/ and root/test/<label>/)"


@dataclasses.dataclass(frozen=True)
class ClipOptions:
    """How clips become frame stacks: load_clips' options (a run's `data_options`)."""
    frames: int = option(DEFAULT_FRAMES, "frames sampled uniformly from each clip, stacked as "
                         "channels", within=Range(1, 1024))
    size: int = option(DEFAULT_SIZE, "side each frame is resized to when decoded and cached "
                       "(then `resize` on the device)", within=Range(1, 4096))
    test_ratio: float = option(DEFAULT_TEST_RATIO, "share of each class held out for testing "
                               "when the folder has no train/ and test/ folders",
                               within=Range(0, 1, low_open=True, high_open=True))
    split_seed: int = option(DEFAULT_SPLIT_SEED, "seeds that split and the clips' order",
                             within=SEED)


@dataclasses.dataclass(frozen=True)
class Clip:
    path: Path
    label: str  # the class folder's name
    split: str | None  # "train"/"test" from the folders, else None until the ratio split


def load_clips(root: str | os.PathLike | None = None, *, frames: int = DEFAULT_FRAMES,
               size: int = DEFAULT_SIZE, test_ratio: float = DEFAULT_TEST_RATIO,
               split_seed: int = DEFAULT_SPLIT_SEED,
               cache_dir: str | os.PathLike | None = None) -> ImageDataset:
    """The clips under `root` (None: the sample clips) as stacks of `frames` gray frames.

    `size` is the side every frame is resized to when decoded; `test_ratio` and `split_seed`
    split each class when `root` has no train/ and test/ folders. `cache_dir` defaults to
    $JAXNIN_CACHE_DIR, else ~/.cache/jaxnin. Raises JaxninError for anything the user can fix.
    """
    _check_options(frames, size, test_ratio)
    cache = resolve_cache_dir(cache_dir)
    files.remove_stale(cache / NAME)  # what a killed decoding left half written
    root = Path(root).expanduser().absolute() if root else sample_clips(cache)
    found = split_clips(find_clips(root), test_ratio, split_seed)
    settings = {"frames": frames, "size": size, "test_ratio": test_ratio,
                "split_seed": split_seed}
    entry = cache / NAME / cache_key(root, found, settings)
    cached = _read_cache(entry)
    if cached is not None:
        log.info("loaded %d clips of %s from cache %s", _count(cached), root, entry)
        _report_decoding(json.loads((entry / "meta.json").read_text()))
        return cached
    return _decode_into_cache(root, found, frames, size, entry)


# ---------------------------------------------------------------------------
# Finding the clips.


def find_clips(root: Path) -> list[Clip]:
    """Every clip under `root`, sorted; reports (one line each) what is not a clip."""
    if not root.is_dir():
        raise JaxninError(f"clips folder {root} does not exist: {_LAYOUT_HINT}")
    layout = {split: root / split for split in SPLITS}
    present = [split for split, folder in layout.items() if folder.is_dir()]
    if len(present) == 1:
        missing = next(s for s in SPLITS if s not in present)
        raise JaxninError(f"{root} has {present[0]}/ but no {missing}/: give both (each holding "
                          "<label>/ folders), or neither to split by `test_ratio`")
    skipped: list[Path] = []
    broken: list[Path] = []
    empty: list[Path] = []
    found: list[Clip] = []
    for split, folder in (layout.items() if present else [(None, root)]):
        for entry in _entries(folder, broken):
            if not entry.is_dir():
                skipped.append(entry)  # a file beside the class folders
                continue
            members = _entries(entry, broken)
            clip_paths = [p for p in members if clips.is_clip(p)]
            skipped += [p for p in members if not clips.is_clip(p)]
            if not clip_paths:
                empty.append(entry)
            found += [Clip(path, entry.name, split) for path in clip_paths]
    if broken:
        log.warning("skipped %d links that lead nowhere (dangling or looping; first: %s)",
                    len(broken), broken[0])
    if skipped:
        log.warning("skipped %d files that are not clips (first: %s); clips are %s arrays, "
                    "%s videos or folders of frame images, inside class folders",
                    len(skipped), skipped[0], "/".join(clips.ARRAY_SUFFIXES),
                    "/".join(clips.VIDEO_SUFFIXES))
    if empty:
        log.warning("skipped %d class folders without clips (first: %s); they are no label",
                    len(empty), empty[0])
    if not found:
        raise JaxninError(f"no clips found in {root}: {_LAYOUT_HINT}")
    return found


def _entries(folder: Path, broken: list[Path]) -> list[Path]:
    """The visible entries of `folder`; links that lead nowhere go to `broken` instead."""
    # Hidden files (.DS_Store, editors' swap files) are never clips nor worth a warning.
    visible = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
    # exists() follows links: False for a dangling link and for a loop (ELOOP).
    broken += [p for p in visible if not p.exists()]
    return [p for p in visible if p.exists()]


def split_clips(found: list[Clip], test_ratio: float, seed: int) -> list[Clip]:
    """Clips with a split each: kept from the folders, else a seeded per-class ratio split.

    Each class gives round(n * test_ratio) of its n clips to test, and keeps at least one for
    training. The result is in a seeded random order, so that a split's first examples (which
    `predict` shows) mix the classes.
    """
    rng = np.random.default_rng(seed)
    if found[0].split is None:
        by_label: dict[str, list[Clip]] = {}
        for clip in found:
            by_label.setdefault(clip.label, []).append(clip)
        found = []
        for label in sorted(by_label):
            members = by_label[label]
            num_test = min(math.floor(len(members) * test_ratio + 0.5), len(members) - 1)
            order = rng.permutation(len(members))
            found += [Clip(members[i].path, label, "test" if rank < num_test else "train")
                      for rank, i in enumerate(order)]
    return [found[i] for i in rng.permutation(len(found))]


# ---------------------------------------------------------------------------
# Decoding.


def _decode_into_cache(root: Path, found: list[Clip], frames: int, size: int,
                       entry: Path) -> ImageDataset:
    log.info("decoding %d clips from %s (%d frames of %dx%d each) ...", len(found), root,
             frames, size, size)
    start = time.perf_counter()
    with scratch_beside(entry, "set JAXNIN_CACHE_DIR to a writable folder") as work:
        meta = _decode(root, found, frames, size, work)
        meta["root"] = str(root)
        (work / "meta.json").write_text(json.dumps(meta))
        _publish(work, entry)
    log.info("decoded %d clips in %.1f s; cached in %s", sum(meta["counts"].values()),
             time.perf_counter() - start, entry)
    _report_decoding(meta)
    dataset = _read_cache(entry)
    if dataset is None:  # only if someone removed it in between
        raise JaxninError(f"the clips cache {entry} vanished while being written: rerun")
    return dataclasses.replace(dataset, source="decoded")


def _decode(root: Path, found: list[Clip], frames: int, size: int, work: Path) -> dict:
    """Decodes every clip into work/<split>_images.npy; returns the cache's metadata."""
    decoded: dict[str, list[tuple[str, int]]] = {split: [] for split in SPLITS}
    unreadable: list[str] = []
    short: list[tuple[str, int]] = []
    progress = _Progress(len(found))
    for split in SPLITS:
        members = [clip for clip in found if clip.split == split]
        if not members:
            continue  # _check_usable below says so (an empty file cannot be mapped)
        stacks = np.lib.format.open_memmap(work / f"{split}_images.npy", mode="w+",
                                           dtype=np.uint8, shape=(len(members), size, size, frames))
        row = 0
        for clip in members:
            progress.step()
            try:
                stacks[row], length = clips.frame_stack(clip.path, frames, size)
            except clips.UnreadableClip as err:
                unreadable.append(f"{clip.path}: {err}")
                log.debug("skipping %s: %s", clip.path, err)
                continue
            if length < frames:
                short.append((str(clip.path), length))
            decoded[split].append((clip.label, row))
            row += 1
        stacks.flush()
        del stacks
        if 0 < row < len(members):
            _truncate(work / f"{split}_images.npy", row)
    class_names = sorted({label for split in SPLITS for label, _ in decoded[split]})
    _check_usable(root, decoded, class_names, unreadable, len(found))
    index = {name: i for i, name in enumerate(class_names)}
    return {
        "cache_format": _CACHE_FORMAT, "class_names": class_names,
        "labels": {split: [index[label] for label, _ in decoded[split]] for split in SPLITS},
        "counts": {split: len(decoded[split]) for split in SPLITS},
        "frames": frames, "size": size, "unreadable": unreadable, "short": short,
        "lost_classes": sorted({c.label for c in found} - set(class_names)),
    }


class _Progress:
    """A line every ten seconds while a large set of clips decodes."""

    def __init__(self, total: int):
        self.total, self.done, self.last = total, 0, time.monotonic()

    def step(self) -> None:
        if time.monotonic() - self.last > 10:
            log.info("decoded %d of %d clips ...", self.done, self.total)
            self.last = time.monotonic()
        self.done += 1


def _truncate(path: Path, rows: int) -> None:
    """Keeps the first `rows` stacks of an .npy (the clips that decoded)."""
    full = np.load(path, mmap_mode="r")
    with files.replacing(path) as part:
        kept = np.lib.format.open_memmap(part, mode="w+", dtype=full.dtype,
                                         shape=(rows, *full.shape[1:]))
        kept[:] = full[:rows]
        kept.flush()
        del kept, full


def _check_usable(root: Path, decoded: dict, class_names: list[str], unreadable: list[str],
                  num_found: int) -> None:
    why = f" ({len(unreadable)} unreadable, first: {unreadable[0]})" if unreadable else ""
    if len(class_names) < 2:
        raise JaxninError(f"{root}: only {len(class_names)} class with readable clips "
                          f"({', '.join(class_names)}){why}: {_LAYOUT_HINT}, "
                          "with at least two labels")
    for split in SPLITS:
        if not decoded[split]:
            raise JaxninError(f"{root}: no readable {split} clips among {num_found}{why}: "
                              f"{_LAYOUT_HINT}, with clips for both splits (or raise "
                              "`test_ratio`)")


def _report_decoding(meta: dict) -> None:
    """One line per kind of trouble the decoding met (again on every cache hit)."""
    if meta["unreadable"]:
        log.warning("skipped %d unreadable clips (first: %s)", len(meta["unreadable"]),
                    meta["unreadable"][0])
    if meta["lost_classes"]:
        log.warning("%d class folders lost every clip and are no label: %s",
                    len(meta["lost_classes"]), ", ".join(meta["lost_classes"]))
    if meta["short"]:
        path, length = meta["short"][0]
        log.info("%d clips have fewer than %d frames and repeat their last one (first: %s, "
                 "%d frames)", len(meta["short"]), meta["frames"], path, length)
    missing = [name for i, name in enumerate(meta["class_names"])
               if i not in set(meta["labels"]["train"])]
    if missing:
        log.warning("%d classes have no training clips: %s", len(missing), ", ".join(missing))


# ---------------------------------------------------------------------------
# The cache.


def cache_key(root: Path, found: list[Clip], settings: dict) -> str:
    """`<settings digest>-<files digest>`: same settings, other files share the first half."""
    recipe = json.dumps({"format": _CACHE_FORMAT, "root": str(root), **settings},
                        sort_keys=True)
    files = hashlib.sha256()
    for clip in found:
        for path in _source_files(clip.path):
            files.update(f"{clip.split}|{clip.label}|{path.relative_to(root)}|"
                         f"{_stamp(path)}\n".encode())
    return f"{_digest(recipe)[:16]}-{files.hexdigest()[:16]}"


def _source_files(path: Path) -> list[Path]:
    # A frame folder is its files; a file added to it or changed in it changes the key.
    return [path, *sorted(path.iterdir())] if path.is_dir() else [path]


def _stamp(path: Path) -> str:
    """Size and mtime; a frame that cannot be stat'ed (a broken link) is decoded as unreadable."""
    try:
        stat = path.stat()
    except OSError as err:
        return f"unreadable {err.errno}"
    return f"{stat.st_size}|{stat.st_mtime_ns}"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def _read_cache(entry: Path) -> ImageDataset | None:
    """The cached dataset, memory-mapped; None when absent or unusable."""
    if not (entry / "meta.json").is_file():
        return None
    try:
        meta = json.loads((entry / "meta.json").read_text())
        images = {split: np.load(entry / f"{split}_images.npy", mmap_mode="r")
                  for split in SPLITS}
        labels = {split: np.asarray(meta["labels"][split], np.int32) for split in SPLITS}
        expected = {split: (meta["counts"][split], meta["size"], meta["size"], meta["frames"])
                    for split in SPLITS}
        ok = meta["cache_format"] == _CACHE_FORMAT and all(
            images[s].shape == expected[s] and images[s].dtype == np.uint8
            and labels[s].shape == (expected[s][0],) for s in SPLITS)
    except (OSError, ValueError, KeyError, TypeError) as err:
        log.warning("ignoring unreadable clips cache %s (%s); decoding again", entry, err)
        return None
    if not ok:
        log.warning("ignoring clips cache %s: its arrays do not match its metadata; "
                    "decoding again", entry)
        return None
    return ImageDataset(name=NAME, train_images=images["train"], train_labels=labels["train"],
                        test_images=images["test"], test_labels=labels["test"],
                        class_names=tuple(meta["class_names"]), source="cache")


def _publish(work: Path, entry: Path) -> Path:
    """Moves a finished cache into place, then drops the entries it invalidated."""
    shutil.rmtree(entry, ignore_errors=True)  # a damaged one; a valid one was returned before
    try:
        files.move(work, entry)
    except OSError:
        if not (entry / "meta.json").is_file():  # not another process finishing first
            raise
    settings_half = entry.name.split("-")[0]
    for stale in entry.parent.glob(f"{settings_half}-*"):
        if stale != entry and not stale.name.startswith("."):
            shutil.rmtree(stale, ignore_errors=True)
    return entry


def _count(dataset: ImageDataset) -> int:
    return len(dataset.train_labels) + len(dataset.test_labels)


# ---------------------------------------------------------------------------
# Settings.


def _check_options(frames: int, size: int, test_ratio: float) -> None:
    check_values(ClipOptions(frames=frames, size=size, test_ratio=test_ratio))


def sample_clips(cache: Path) -> Path:
    """The sample clips' folder in the cache, written on first use."""
    folder = (cache / SAMPLE_CLIPS).absolute()
    if not folder.is_dir():
        from jaxnin.data import make_sample_clips

        log.info("no clips folder given: writing the sample clips to %s (once) ...", folder)
        try:
            make_sample_clips.write_sample_clips(folder)
        except (JaxninError, OSError):
            if not folder.is_dir():  # else another process wrote them first: use those
                raise
    return folder
