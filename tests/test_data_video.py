"""jaxnin.data.video and jaxnin.data.clips on tiny generated clips of every format.

Each stack is checked against the frames it must hold (exactly for lossless formats), each
label against the folder its clip came from, and each bad input against its one-line report.
"""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jaxnin.cli import run_main
from jaxnin.data import clips, load_data, make_sample_clips, video
from jaxnin.data.pipeline import resize_matrix
from jaxnin.errors import JaxninError

SIZE = 12  # the clips' own side: stacks come back unresized unless a test says otherwise


@pytest.fixture(autouse=True)
def _no_jaxnin_env(monkeypatch):
    monkeypatch.delenv("JAXNIN_CACHE_DIR", raising=False)


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def frames_of(seed: int, length: int = 6, size: int = SIZE, channels: int | None = None):
    """A distinct random clip: (length, size, size[, channels]) uint8."""
    shape = (length, size, size) + ((channels,) if channels else ())
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def seed_of(label: str, number: int) -> int:
    return 1000 * ord(label[0]) + number


def write_frame_folder(folder: Path, frames: np.ndarray) -> Path:
    folder.mkdir(parents=True)
    for i, frame in enumerate(frames):  # frame10 after frame9: natural order is tested too
        Image.fromarray(frame).save(folder / f"frame{i}.png")
    return folder


def write_video(path: Path, frames: np.ndarray, codec: str) -> Path:
    av = pytest.importorskip("av")
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=10)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        for gray in frames:
            rgb = np.repeat(gray[..., None], 3, axis=-1)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")))
        container.mux(stream.encode())
    return path


def save_npy(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.save(path, array)
    return path


def expected_stack(frames: np.ndarray, count: int) -> np.ndarray:
    """What the loader must return for lossless gray frames of the clip's own size."""
    return np.moveaxis(frames[clips.sample_indices(len(frames), count)], 0, -1)


def find_row(images: np.ndarray, stack: np.ndarray, atol: int = 0) -> int:
    """The one row of `images` that equals `stack` (within atol)."""
    diff = np.abs(np.asarray(images, np.int16) - stack.astype(np.int16)).reshape(len(images), -1)
    rows = np.flatnonzero(diff.max(axis=1) <= atol)
    assert len(rows) == 1, f"{len(rows)} rows match"
    return int(rows[0])


# ---------------------------------------------------------------------------
# The frame arithmetic.


@pytest.mark.parametrize("length, frames, indices", [
    (10, 4, [1, 3, 6, 8]),       # the middle frame of each of four equal segments
    (4, 4, [0, 1, 2, 3]),
    (9, 3, [1, 4, 7]),
    (3, 5, [0, 1, 2, 2, 2]),     # shorter clips repeat their last frame
    (1, 3, [0, 0, 0]),
    (7, 1, [3]),
])
def test_uniform_sampling(length, frames, indices):
    assert clips.sample_indices(length, frames).tolist() == indices


def test_gray_is_pillows_L():
    rgb = frames_of(1, length=1, size=33, channels=3)[0]
    expected = np.asarray(Image.fromarray(rgb, "RGB").convert("L"))
    np.testing.assert_array_equal(clips.to_gray(rgb), expected)


def test_resize_weights_are_the_device_pipelines():
    for in_size, out_size in [(64, 67), (67, 64), (96, 40), (5, 5), (3, 9)]:
        np.testing.assert_allclose(clips.bilinear_weights(in_size, out_size),
                                   resize_matrix(in_size, out_size), atol=1e-5)


def test_resize_frames_exact_cases():
    flat = np.full((2, 10, 14), 77, np.uint8)
    np.testing.assert_array_equal(clips.resize_frames(flat, 6), np.full((2, 6, 6), 77))
    clip = frames_of(2)
    assert clips.resize_frames(clip, SIZE) is clip  # already that size: untouched
    halves = np.zeros((1, 4, 4), np.uint8)
    halves[:, :, 2:] = 200
    # 4 -> 2: output column 0 samples at 0.5 with a triangle of half-width 2, so columns 0..2
    # weigh 0.75, 0.75, 0.25 (sum 1.75): 200 * 0.25 / 1.75 = 28.6; column 1 mirrors it.
    np.testing.assert_array_equal(clips.resize_frames(halves, 2)[0], [[29, 171], [29, 171]])


# ---------------------------------------------------------------------------
# Every format: exact shapes, stacks and labels.


def test_every_format_loads_with_its_label(tmp_path, cache):
    root = tmp_path / "clips"
    written = {}  # name -> (label, expected stack, tolerance)

    def add(label, name, frames, tolerance=0):
        written[name] = (label, expected_stack(frames, 4), tolerance)

    for n, split in enumerate(("train", "test")):
        base = root / split
        f = frames_of(10 * n + 1)
        save_npy(base / "hello" / "a.npy", f)
        add("hello", f"{split}/a.npy", f)
        f = frames_of(10 * n + 2, length=5, channels=3)  # RGB (T, H, W, 3)
        save_npy(base / "thanks" / "b.npy", f)
        add("thanks", f"{split}/b.npy", clips.to_gray(f))
        f = frames_of(10 * n + 3, length=11)
        np.savez(base / "thanks" / "c.npz", frames=f, other=np.zeros(3))
        add("thanks", f"{split}/c.npz", f)
        f = frames_of(10 * n + 4, length=12)
        write_frame_folder(base / "hello" / "d", f)
        add("hello", f"{split}/d", f)
        f = (frames_of(10 * n + 5, channels=1) / 255.0).astype(np.float32)
        save_npy(base / "yes" / "e.npy", f)  # floats in [0, 1], (T, H, W, 1)
        add("yes", f"{split}/e.npy", np.rint(f[..., 0] * 255).astype(np.uint8))

    data = video.load_clips(root, frames=4, size=SIZE, cache_dir=cache)
    assert data.class_names == ("hello", "thanks", "yes")
    assert data.name == "video" and data.source == "decoded"
    for split in ("train", "test"):
        images, labels = getattr(data, f"{split}_images"), getattr(data, f"{split}_labels")
        assert images.shape == (5, SIZE, SIZE, 4) and images.dtype == np.uint8
        assert labels.dtype == np.int32
        for name, (label, stack, tolerance) in written.items():
            if name.startswith(split):
                row = find_row(images, stack, tolerance)
                assert data.class_names[labels[row]] == label, name


@pytest.mark.parametrize("suffix, codec", [(".mp4", "libx264"), (".avi", "mpeg4"),
                                           (".webm", "libvpx-vp9")])
def test_video_files_decode_to_their_frames(tmp_path, suffix, codec):
    frames = np.zeros((9, 32, 32), np.uint8)
    for t in range(9):  # a bright bar sweeping right: lossy codecs keep that clearly
        frames[t, :, 3 * t:3 * t + 6] = 220
        frames[t] += 20
    path = write_video(tmp_path / f"clip{suffix}", frames, codec)
    stack, length = clips.frame_stack(path, frames=3, size=16)
    assert length == 9 and stack.shape == (16, 16, 3) and stack.dtype == np.uint8
    expected = np.moveaxis(clips.resize_frames(frames[[1, 4, 7]], 16), 0, -1)
    assert np.abs(stack.astype(int) - expected).mean() < 6
    columns = stack.mean(axis=0)  # the bar's column of brightest mean, per sampled frame
    assert list(columns.argmax(axis=0)) == sorted(columns.argmax(axis=0))


def test_frames_are_resized_to_size(tmp_path, cache):
    root = tmp_path / "clips"
    save_npy(root / "a" / "small.npy", frames_of(1, size=8))
    save_npy(root / "a" / "wide.npy", frames_of(2)[:, :, :10])  # mixed frame sizes are fine
    save_npy(root / "b" / "large.npy", frames_of(3, size=40))
    save_npy(root / "b" / "other.npy", frames_of(4, size=20))
    data = video.load_clips(root, frames=3, size=16, test_ratio=0.5, cache_dir=cache)
    assert data.train_images.shape == (2, 16, 16, 3) and data.test_images.shape == (2, 16, 16, 3)
    images = np.concatenate([data.train_images, data.test_images])
    labels = np.concatenate([data.train_labels, data.test_labels])
    for seed, size, label in ((3, 40, "b"), (1, 8, "a")):
        frames = frames_of(seed, size=size)[[1, 3, 5]]  # 6 frames -> 3: the segments' middles
        row = find_row(images, np.moveaxis(clips.resize_frames(frames, 16), 0, -1))
        assert data.class_names[labels[row]] == label


# ---------------------------------------------------------------------------
# The split.


def test_ratio_split_is_per_class_seeded_and_recorded_in_the_order(tmp_path, cache):
    root = tmp_path / "clips"
    for label in ("b_second", "a_first"):
        for i in range(5):
            save_npy(root / label / f"{i}.npy", frames_of(seed_of(label, i)))
    data = video.load_clips(root, frames=2, test_ratio=0.4, split_seed=3, cache_dir=cache,
                            size=SIZE)
    assert data.class_names == ("a_first", "b_second")  # sorted folder names
    assert sorted(data.test_labels.tolist()) == [0, 0, 1, 1]  # round(5 * 0.4) of each
    assert sorted(data.train_labels.tolist()) == [0, 0, 0, 1, 1, 1]
    again = video.load_clips(root, frames=2, test_ratio=0.4, split_seed=3, cache_dir=cache,
                             size=SIZE)
    np.testing.assert_array_equal(again.test_images, data.test_images)
    other = video.load_clips(root, frames=2, test_ratio=0.4, split_seed=4, cache_dir=cache,
                             size=SIZE)
    assert not np.array_equal(np.sort(other.test_images, axis=0), np.sort(data.test_images, axis=0))


def test_a_single_clip_class_stays_in_training(tmp_path):
    found = [video.Clip(Path(f"{i}.npy"), "a", None) for i in range(3)] + [
        video.Clip(Path("x.npy"), "b", None)]
    split = video.split_clips(found, 0.5, 0)
    assert [c.split for c in split if c.label == "b"] == ["train"]
    assert sorted(c.split for c in split if c.label == "a") == ["test", "test", "train"]


# ---------------------------------------------------------------------------
# The cache.


def test_cache_is_hit_then_invalidated_by_a_changed_file(tmp_path, cache):
    root = tmp_path / "clips"
    for label in ("a", "b"):
        for i in range(2):
            save_npy(root / "train" / label / f"{i}.npy", frames_of(seed_of(label, i)))
        save_npy(root / "test" / label / "t.npy", frames_of(seed_of(label, 9)))
    first = video.load_clips(root, frames=3, size=SIZE, cache_dir=cache)
    second = video.load_clips(root, frames=3, size=SIZE, cache_dir=cache)
    assert (first.source, second.source) == ("decoded", "cache")
    assert isinstance(second.train_images, np.memmap)
    np.testing.assert_array_equal(second.train_images, first.train_images)
    np.testing.assert_array_equal(second.test_labels, first.test_labels)

    changed = frames_of(12345)
    target = root / "test" / "b" / "t.npy"
    save_npy(target, changed)
    os.utime(target, ns=(1, 1))  # a new mtime even on file systems with coarse clocks
    third = video.load_clips(root, frames=3, size=SIZE, cache_dir=cache)
    assert third.source == "decoded"
    row = find_row(third.test_images, expected_stack(changed, 3))
    assert third.class_names[third.test_labels[row]] == "b"
    assert len(list((cache / "video").iterdir())) == 1  # the stale entry is gone

    save_npy(root / "train" / "a" / "new.npy", frames_of(777))
    fourth = video.load_clips(root, frames=3, size=SIZE, cache_dir=cache)
    assert fourth.source == "decoded" and len(fourth.train_labels) == 5
    assert video.load_clips(root, frames=2, size=SIZE, cache_dir=cache).source == "decoded"


def test_settings_and_env_pick_the_cache(tmp_path, monkeypatch):
    root = tmp_path / "clips"
    for label in ("a", "b"):
        for i in range(2):
            save_npy(root / label / f"{i}.npy", frames_of(seed_of(label, i)))
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(tmp_path / "env_cache"))
    data = load_data("video", root, {"frames": 2, "size": SIZE, "test_ratio": 0.5})
    assert data.train_images.shape == (2, SIZE, SIZE, 2)
    assert (tmp_path / "env_cache" / "video").is_dir()


# ---------------------------------------------------------------------------
# Bad input: each is one line, and no label goes wrong.


def two_good_classes(root: Path) -> None:
    for label in ("a", "b"):
        for i in range(2):
            save_npy(root / "train" / label / f"{i}.npy", frames_of(seed_of(label, i)))
        save_npy(root / "test" / label / "t.npy", frames_of(seed_of(label, 7)))


def warnings_of(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_corrupt_clips_are_skipped_with_a_count(tmp_path, cache, caplog):
    root = tmp_path / "clips"
    two_good_classes(root)
    (root / "train" / "a" / "broken.mp4").write_bytes(os.urandom(2000))
    good = save_npy(root / "train" / "b" / "cut.npy", frames_of(5))
    good.write_bytes(good.read_bytes()[:150])  # truncated
    write_frame_folder(root / "train" / "b" / "mixed", frames_of(6, length=2))
    Image.fromarray(frames_of(6, length=1, size=5)[0]).save(root / "train" / "b" / "mixed" /
                                                            "frame2.png")
    with caplog.at_level(logging.INFO):
        data = video.load_clips(root, frames=3, size=SIZE, cache_dir=cache)
    assert len(data.train_labels) == 4 and data.class_names == ("a", "b")
    lines = [m for m in warnings_of(caplog) if "unreadable" in m]
    assert len(lines) == 1 and lines[0].startswith("skipped 3 unreadable clips (first: ")
    assert "\n" not in lines[0]
    for i in range(2):  # the good clips keep their labels
        for label in ("a", "b"):
            row = find_row(data.train_images, expected_stack(frames_of(seed_of(label, i)), 3))
            assert data.class_names[data.train_labels[row]] == label
    caplog.clear()
    with caplog.at_level(logging.INFO):
        assert video.load_clips(root, frames=3, size=SIZE, cache_dir=cache).source == "cache"
    assert any("skipped 3 unreadable clips" in m for m in warnings_of(caplog))  # said again


@pytest.mark.parametrize("name, reason", [
    ("floats.npy", "in [0, 1]"), ("wide.npy", "channels"), ("flat.npy", "not (T, H, W)"),
    ("keys.npz", "name the frames"), ("empty_folder", "without frame images"),
])
def test_unreadable_array_kinds_say_why(tmp_path, name, reason):
    path = tmp_path / name
    if name == "floats.npy":
        np.save(path, np.full((3, 4, 4), 2.0))
    elif name == "wide.npy":
        np.save(path, np.zeros((3, 4, 4, 5), np.uint8))
    elif name == "flat.npy":
        np.save(path, np.zeros((4, 4), np.uint8))
    elif name == "keys.npz":
        np.savez(path, x=np.zeros((3, 4, 4)), y=np.zeros((3, 4, 4)))
    else:
        path.mkdir()
        (path / "notes.txt").write_text("no frames here")
    with pytest.raises(clips.UnreadableClip, match=re.escape(reason)):
        clips.frame_stack(path, 2, 4)


def test_empty_class_folders_and_non_clips_are_reported(tmp_path, cache, caplog):
    root = tmp_path / "clips"
    two_good_classes(root)
    (root / "train" / "empty").mkdir()
    (root / "train" / "a" / "notes.txt").write_text("not a clip")
    (root / "train" / "a" / ".DS_Store").write_bytes(b"\0")  # hidden: silently ignored
    (root / "test" / "labels.csv").write_text("a,b")
    with caplog.at_level(logging.INFO):
        data = video.load_clips(root, frames=3, size=SIZE, cache_dir=cache)
    assert data.class_names == ("a", "b")  # the empty folder is no label
    messages = warnings_of(caplog)
    assert any(m.startswith("skipped 2 files that are not clips (first: ") for m in messages)
    assert any(m.startswith("skipped 1 class folders without clips (first: ") and
               m.rstrip().endswith("they are no label") for m in messages), messages


def test_a_class_whose_clips_all_fail_is_dropped_loudly(tmp_path, cache, caplog):
    root = tmp_path / "clips"
    two_good_classes(root)
    (root / "train" / "c").mkdir()
    (root / "train" / "c" / "bad.avi").write_bytes(b"not a video")
    with caplog.at_level(logging.INFO):
        data = video.load_clips(root, frames=3, size=SIZE, cache_dir=cache)
    assert data.class_names == ("a", "b")
    assert any("lost every clip" in m and m.endswith(": c") for m in warnings_of(caplog))


def test_short_clips_repeat_their_last_frame(tmp_path, cache, caplog):
    root = tmp_path / "clips"
    two_good_classes(root)
    short = frames_of(42, length=2)
    save_npy(root / "train" / "a" / "short.npy", short)
    with caplog.at_level(logging.INFO):
        data = video.load_clips(root, frames=5, size=SIZE, cache_dir=cache)
    row = find_row(data.train_images, np.moveaxis(short[[0, 1, 1, 1, 1]], 0, -1))
    assert data.class_names[data.train_labels[row]] == "a"
    assert any(m.startswith("1 clips have fewer than 5 frames and repeat their last one")
               for m in (r.getMessage() for r in caplog.records))


@pytest.mark.parametrize("make, needle", [
    (lambda root: None, "does not exist"),
    (lambda root: (root / "train" / "a").mkdir(parents=True), "has train/ but no test/"),
    (lambda root: save_npy(root / "only" / "x.npy", frames_of(1)) and
     save_npy(root / "only" / "y.npy", frames_of(2)), "only 1 class"),
    (lambda root: (root / "a").mkdir(parents=True), "no clips found"),
    (lambda root: save_npy(root / "train" / "a" / "x.npy", frames_of(1)) and
     save_npy(root / "train" / "b" / "y.npy", frames_of(2)) and
     (root / "test" / "a").mkdir(parents=True), "no readable test clips"),
    (lambda root: save_npy(root / "a" / "x.npy", frames_of(1)) and
     (root / "a" / "y.mp4").write_bytes(b"junk") and save_npy(root / "b" / "z.npy", frames_of(2))
     and (root / "b" / "w.npy").write_bytes(b"junk"), "no readable test clips among 4 (2 "
     "unreadable"),
])
def test_unusable_roots_are_one_line_errors(tmp_path, cache, make, needle):
    root = tmp_path / "clips"
    make(root)
    with pytest.raises(JaxninError, match=re.escape(needle)) as err:
        video.load_clips(root, frames=2, size=SIZE, cache_dir=cache)
    assert "\n" not in str(err.value) and str(root) in str(err.value)


@pytest.mark.parametrize("options, needle", [({"frames": 0}, "`frames`"), ({"size": -1}, "`size`"),
                                             ({"test_ratio": 1.0}, "`test_ratio`")])
def test_bad_options_name_their_field(tmp_path, options, needle):
    with pytest.raises(JaxninError, match=needle):
        video.load_clips(tmp_path, cache_dir=tmp_path, **options)


# ---------------------------------------------------------------------------
# The sample clips.


def test_sample_clips_are_real_videos_of_their_motion(tmp_path):
    pytest.importorskip("av")
    out = make_sample_clips.write_sample_clips(tmp_path / "s", clips_per_class=2, size=32)
    assert sorted(p.name for p in out.iterdir()) == sorted(make_sample_clips.MOTIONS)
    for motion in ("left", "right", "up", "down", "zoom_in", "zoom_out"):
        for path in sorted((out / motion).glob("*.mp4")):
            stack, length = clips.frame_stack(path, frames=4, size=32)
            assert make_sample_clips.MIN_FRAMES <= length <= make_sample_clips.MAX_FRAMES
            first, last = stack[..., 0].astype(float), stack[..., -1].astype(float)
            bright = lambda f: f > (f.max() + np.median(f)) / 2
            cy, cx = (np.argwhere(bright(first)).mean(0), np.argwhere(bright(last)).mean(0))
            moved = {"left": cx[1] - cy[1], "right": cy[1] - cx[1], "up": cx[0] - cy[0],
                     "down": cy[0] - cx[0], "zoom_in": bright(first).sum() - bright(last).sum(),
                     "zoom_out": bright(last).sum() - bright(first).sum()}[motion]
            assert moved < 0 if motion.startswith("zoom") else moved < -4, (path, moved)
    again = make_sample_clips.write_sample_clips(tmp_path / "t", clips_per_class=2, size=32)
    same = [(p, again / p.relative_to(out)) for p in sorted(out.glob("*/*.mp4"))]
    assert all(clips.frame_stack(a, 4, 32)[0].tobytes() == clips.frame_stack(b, 4, 32)[0].tobytes()
               for a, b in same)


def test_no_root_means_the_sample_clips_written_once(tmp_path, monkeypatch):
    pytest.importorskip("av")
    calls = []
    original = make_sample_clips.write_sample_clips

    def few_clips(out_dir):
        calls.append(out_dir)
        return original(out_dir, clips_per_class=3, size=32)

    monkeypatch.setattr(make_sample_clips, "write_sample_clips", few_clips)
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(tmp_path))
    data = video.load_clips(None, frames=4, size=32, test_ratio=0.34)
    assert data.class_names == tuple(sorted(make_sample_clips.MOTIONS))
    assert data.test_images.shape == (8, 32, 32, 4) and len(data.train_labels) == 16
    assert sorted(np.bincount(data.test_labels)) == [1] * 8
    again = video.load_clips(None, frames=4, size=32, test_ratio=0.34)
    assert again.source == "cache" and len(calls) == 1
    assert calls[0] == tmp_path / video.SAMPLE_CLIPS


def test_make_sample_clips_command_refuses_an_existing_folder(tmp_path, capsys):
    tmp_path.joinpath("taken").mkdir()
    assert run_main(make_sample_clips.main, [str(tmp_path / "taken")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_links_that_lead_nowhere_are_skipped_with_a_count(tmp_path, cache, caplog):
    root = tmp_path / "clips"
    two_good_classes(root)
    (root / "train" / "a" / "dangling.npy").symlink_to(tmp_path / "gone.npy")
    loop = root / "train" / "b" / "loop.npy"
    loop.symlink_to(loop)  # ELOOP when followed
    (root / "train" / "c").symlink_to(tmp_path / "gone_folder")  # a class folder link, broken
    frames = write_frame_folder(root / "train" / "b" / "frames", frames_of(8, length=3))
    (frames / "frame3.png").symlink_to(tmp_path / "gone.png")  # inside a frame folder
    with caplog.at_level(logging.INFO):
        data = video.load_clips(root, frames=3, size=SIZE, cache_dir=cache)
    # The frame folder keeps its three real frames: a frame list skips what is not a file.
    assert data.class_names == ("a", "b") and len(data.train_labels) == 5
    lines = [m for m in warnings_of(caplog) if "lead nowhere" in m]
    assert len(lines) == 1 and lines[0].startswith("skipped 3 links that lead nowhere")
    assert not [m for m in warnings_of(caplog) if "unreadable" in m]
    assert video.load_clips(root, frames=3, size=SIZE, cache_dir=cache).source == "cache"


def test_cache_dir_under_a_file_says_so(tmp_path, monkeypatch):
    root = tmp_path / "clips"
    two_good_classes(root)
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(tmp_path / "a_file" / "cache"))
    with pytest.raises(JaxninError, match=re.escape(f"{tmp_path / 'a_file'} is a file")) as err:
        video.load_clips(root, frames=2, size=SIZE)
    assert "\n" not in str(err.value) and "JAXNIN_CACHE_DIR" in str(err.value)
