"""python -m experiments.acceptance: the plan parses, the budget holds, and a --tiny run of
every part records, skips what is recorded, reruns with --redo, and runs as a bare GPU host
would run it."""
import contextlib
import json
import os
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from experiments.acceptance import estimate, pack, plan
from jaxnin.data import clips, make_sample_clips
from jaxnin.errors import JaxninError
from faults import one_error_line
from procs import alive, gone_within

REPO = Path(__file__).resolve().parents[1]
# What a bare GPU host lacks; None in sys.modules makes `import x` raise ImportError.
BARE_HOST_MISSING = ("tensorflow", "tensorflow_datasets", "tensorboardX", "av")


def test_every_planned_command_is_one_its_recipe_accepts():
    """Each run's flags go through its recipe's (or the bench's, the ablation's) own parser."""
    for tiny in (False, True):
        for run in plan.plan(tiny):
            seconds, source = estimate.estimate_s(run)
            assert 1 < seconds < 3600 and "estimate" in source, run.key
    keys = [r.key for r in plan.plan()]
    assert len(keys) == len(set(keys))
    assert [r.part for r in plan.plan()] == sorted((r.part for r in plan.plan()),
                                                   key=plan.PARTS.index)


def test_first_slot_fits_smoke_the_three_seeds_and_vgg():
    """The budget: a ~10-minute first slot records smoke, main-seed0..2 and VGG-11."""
    first = [r for r in plan.plan() if r.part == "smoke" or r.key.startswith("main-")
             or r.key == "vgg11"]
    assert len(first) == 11
    assert sum(estimate.estimate_s(r)[0] for r in first) < 540
    assert [r.key for r in plan.plan()][:11] == [r.key for r in first]


def test_candidate_defaults_are_the_main_job_s_seeds_with_one_lever_each():
    """Each candidate runs main-seed<s>'s command plus its flags, after the first slot."""
    keys = [r.key for r in plan.plan()]
    runs = {r.key: r for r in plan.plan()}
    for name, flags in plan.MAIN_CANDIDATES.items():
        for seed in (0, 1, 2):
            main = runs[f"main-seed{seed}"]
            candidate = runs[f"candidate-{name}-seed{seed}"]
            assert candidate.commands == main.commands  # the same command, --from its config
            assert candidate.train_config() == main.train_config().replace(model_options={
                **main.train_config().model_options, **flags["model_options"]})
            assert candidate.target == runs[f"main-seed{seed}"].target
            assert keys.index(candidate.key) > keys.index("vgg11")


def test_estimates_follow_the_reference_figures():
    """The main job's estimate is the H100 figure (3.3 s an epoch) plus stated overheads."""
    main = next(r for r in plan.plan() if r.key == "main-seed0")
    per_epoch = (3 * 60_000 + 10_000) * 1_524_907_520 / estimate.rate("float32", "nin")
    assert 3.3 < per_epoch < 3.7
    expected = estimate.MARGIN * (estimate.START_S + 10 * (per_epoch + 468 * estimate.STEP_S
                                                           + estimate.EPOCH_S))
    assert estimate.estimate_s(main)[0] == pytest.approx(expected, rel=1e-3)
    bf16 = estimate.rate("bfloat16", "vgg11") / estimate.rate("float32", "vgg11")
    assert bf16 == pytest.approx(6000 / 3200)
    prior = {"status": "ok", "wall_s": 40.0, "date": "2026-12-01"}
    assert estimate.estimate_s(main, prior) == (44.0, pytest.approx(
        "measured earlier on this device kind (2026-12-01) + 10 %"))


def _acceptance(args, env, timeout=600):
    return subprocess.run([sys.executable, "-m", "experiments.acceptance", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=timeout)


def _env(cache: Path, **extra) -> dict:
    return dict(os.environ, JAXNIN_CACHE_DIR=str(cache), PYTHONPATH=str(REPO), **extra)


def _records(out: Path) -> dict[str, dict]:
    return {p.stem: json.loads(p.read_text()) for p in out.glob("acceptance/cpu-tiny-*/*.json")}


def test_a_budget_too_small_runs_nothing_and_says_why(tmp_path, shared_data):
    done = _acceptance(["--tiny", "--data-dir", str(shared_data), "--out", str(tmp_path / "x"),
                        "--scratch", str(tmp_path / "s"), "--budget-s", "5"], _env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert not _records(tmp_path / "x")
    table = next((tmp_path / "x" / "acceptance").glob("cpu-tiny-*.md")).read_text()
    assert table.count("left of --budget-s") == len(plan.plan(tiny=True))


@pytest.mark.parametrize("flags, says", [
    (["--budget-s", "0"], "--budget-s must be above 0, got 0.0"),
    (["--budget-s", "nan"], "--budget-s must be a finite number, got nan"),
    (["--archive", "{blocker}/records.tar.gz"],
     "records.tar.gz cannot be written ({blocker} is a file, not a folder)"),
    (["--archive", "{blocker}/deeper/records.tar.gz"],
     "records.tar.gz cannot be written ({blocker} is a file, not a folder)"),
    (["--archive", "{folder}"], "{folder} cannot be written ({folder} is a folder, not a file"),
    (["--archive", "{tmp}/new/"], "new/ cannot be written ({tmp}/new is a folder, not a file"),
])
def test_a_meaningless_budget_or_an_unwritable_archive_is_refused_before_any_run(
        flags, says, tmp_path, capsys, monkeypatch):
    from experiments.acceptance import cli
    from jaxnin.cli import run_main

    (tmp_path / "blocker").write_text("a file, not a folder")
    (tmp_path / "folder").mkdir()
    paths = {"blocker": tmp_path / "blocker", "folder": tmp_path / "folder", "tmp": tmp_path}
    monkeypatch.setattr(cli, "probe_device", lambda env: pytest.fail("a run began"))
    argv = ["--tiny", "--out", str(tmp_path / "x"), "--scratch", str(tmp_path / "s"),
            *(f.format(**paths) for f in flags)]
    code = run_main(cli.main, argv)
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and says.format(**paths) in err, err
    assert not (tmp_path / "x").exists() and not (tmp_path / "s").exists()
    assert not (tmp_path / "new").exists()


def test_an_archive_path_that_became_a_folder_meanwhile_is_one_line_keeping_the_records(
        tmp_path):
    out, archive = tmp_path / "out", tmp_path / "a.tar.gz"
    (out / "r").mkdir(parents=True)
    (out / "r" / "run.json").write_text("{}")
    archive.mkdir()
    with pytest.raises(JaxninError, match=f"--archive {archive} cannot be written .*folder.*"
                       f"kept in {out}"):
        pack.pack(out, [out / "r"], archive)
    assert (out / "r" / "run.json").is_file() and archive.is_dir()


def _tiny_args(tmp_path, shared_data, out, archive) -> list[str]:
    return ["--tiny", "--data-dir", str(shared_data), "--out", str(out), "--scratch",
            str(tmp_path / "scratch"), "--archive", str(archive)]


@pytest.mark.slow  # every part: about 25 minutes on the loaded 2-core dev machine
def test_tiny_runs_every_part(tmp_path, shared_data, fashion, mnist, data_cache):
    out, archive = tmp_path / "out", tmp_path / "acceptance.tar.gz"
    first = _acceptance(_tiny_args(tmp_path, shared_data, out, archive), _env(data_cache),
                        timeout=3600)
    assert first.returncode == 0, first.stdout + first.stderr
    records = _records(out)
    assert sorted(records) == sorted(r.key for r in plan.plan(tiny=True))
    assert {k: r["status"] for k, r in records.items() if r["status"] != "ok"} == {}
    for key in ("main-seed0", "smoke-video", "smoke-export"):
        folder = out / records[key]["records"]
        assert {"history.json", "run.json", "console.txt", "acc.png"} <= {p.name for p in
                                                                           folder.iterdir()}
    assert "max abs diff" in records["smoke-export"]["measured"]["export"]
    main = records["main-seed0"]
    assert main["met"] is False and main["measured"]["final_test_acc"] < 0.885  # 256 images
    assert main["measured"]["examples_per_s"] > 0 and main["wall_s"] > 0
    assert records["bench-lenet"]["measured"]["throughput"][0]["status"] == "ok"
    assert records["ablation-a1"]["measured"]["final_test_acc_mean"] > 0
    table = next((out / "acceptance").glob("cpu-tiny-*.md")).read_text()
    assert table.count("| smoke |") == 7 and "**missed**" in table and "not run:" not in table
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert archive.stat().st_size <= pack.LIMIT_BYTES
    assert any(n.endswith("main-seed0/history.json") for n in names)
    assert not any("checkpoints" in n for n in names)


def test_records_then_skips_then_redoes_as_a_bare_host(tmp_path, shared_data, mnist, data_cache):
    """On the cheapest run: recorded, skipped when recorded, rerun with --redo."""
    out, archive = tmp_path / "out", tmp_path / "acceptance.tar.gz"
    args = [*_tiny_args(tmp_path, shared_data, out, archive), "--runs", "smoke-lenet"]
    first = _acceptance(args, _env(data_cache))
    assert first.returncode == 0, first.stdout + first.stderr
    records = _records(out)
    assert list(records) == ["smoke-lenet"] and records["smoke-lenet"]["status"] == "ok"
    folder = out / records["smoke-lenet"]["records"]
    assert {"history.json", "run.json", "console.txt", "acc.png"} <= {p.name for p in
                                                                       folder.iterdir()}
    assert records["smoke-lenet"]["measured"]["examples_per_s"] > 0
    table = next((out / "acceptance").glob("cpu-tiny-*.md")).read_text()
    assert "not run: not chosen (--parts, --runs)" in table and "| smoke | mnist_lenet --tuned" in table
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert archive.stat().st_size <= pack.LIMIT_BYTES
    assert "mnist_lenet/" + records["smoke-lenet"]["records"].split("/", 1)[1] + "/history.json" in names
    assert any(n.startswith("acceptance/cpu-tiny-") and n.endswith(".md") for n in names)
    assert not any("checkpoints" in n for n in names)

    second = _acceptance(args, _env(data_cache))
    assert second.returncode == 0, second.stderr
    assert "smoke-lenet: recorded" in second.stdout and "running" not in second.stdout
    assert _records(out) == records

    # --redo reruns, as a bare GPU host would: none of tensorflow, tensorflow_datasets,
    # tensorboardX or av importable, and a fresh data cache, so MNIST comes from the gz files
    # and the sample clips are written as .npy.
    site = tmp_path / "bare"
    site.mkdir()
    (site / "sitecustomize.py").write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in BARE_HOST_MISSING))
    bare_cache = tmp_path / "bare_cache"
    env = _env(bare_cache)
    env["PYTHONPATH"] = os.pathsep.join((str(site), str(REPO)))
    redo = _acceptance([*args[:-1], "smoke-lenet,smoke-video", "--redo"], env)
    assert redo.returncode == 0, redo.stdout + redo.stderr
    again = _records(out)
    assert sorted(again) == ["smoke-lenet", "smoke-video"]
    assert again["smoke-lenet"]["wall_s"] != records["smoke-lenet"]["wall_s"]  # it ran again
    assert {k: r["reason"] for k, r in again.items() if r["status"] != "ok"} == {}
    console = (out / again["smoke-lenet"]["records"] / "console.txt").read_text()
    assert "no TensorBoard scalars are written" in console  # said once, not a crash
    assert list((bare_cache / "sample_clips_v1").glob("*/*.npy"))
    assert not list((bare_cache / "sample_clips_v1").glob("*/*.mp4"))


# A recipe stuck where it cannot obey SIGTERM (as inside a compile), with a child of its own:
# sitecustomize runs this in place of the recipe's command (the runner itself runs on).
STUCK_RECIPE = """
import os, signal, subprocess, sys, time
if "jaxnin.experiments.mnist_lenet" in sys.orig_argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.environ["STUCK_PIDS"] + ".tmp", "w") as f:
        f.write(f"{os.getpid()} {child.pid}")
    os.rename(os.environ["STUCK_PIDS"] + ".tmp", os.environ["STUCK_PIDS"])
    time.sleep(120)
"""


def test_ctrl_c_ends_the_runner_and_its_child_tree_within_10_s(tmp_path, shared_data):
    """The recipe runs in a session of its own, out of a terminal's Ctrl-C: the runner must end
    it and its children, SIGKILL where SIGTERM is not obeyed, and say what is recorded."""
    site, pids_file = tmp_path / "site", tmp_path / "pids"
    site.mkdir()
    (site / "sitecustomize.py").write_text(STUCK_RECIPE)
    env = _env(tmp_path / "cache", STUCK_PIDS=str(pids_file))
    env["PYTHONPATH"] = os.pathsep.join((str(site), str(REPO)))
    args = [*_tiny_args(tmp_path, shared_data, tmp_path / "out", tmp_path / "a.tar.gz"),
            "--runs", "smoke-lenet"]
    runner = subprocess.Popen([sys.executable, "-m", "experiments.acceptance", *args], cwd=REPO,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    pids = []
    try:
        deadline = time.monotonic() + 120
        while not pids_file.exists():
            assert runner.poll() is None and time.monotonic() < deadline, runner.communicate()
            time.sleep(0.05)
        pids = [int(pid) for pid in pids_file.read_text().split()]
        sent = time.monotonic()
        runner.send_signal(signal.SIGINT)
        _, err = runner.communicate(timeout=60)
        assert time.monotonic() - sent <= 10, err
        kept = f"0 of the 1 chosen runs are recorded ok in {tmp_path / 'out' / 'acceptance'}"
        one_error_line(runner.returncode, err, "interrupted (Ctrl-C or SIGTERM)", kept,
                       "rerun the same command")
        assert gone_within(pids, 2), [pid for pid in pids if alive(pid)]
    finally:
        runner.kill()
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)


# A recipe stopped by a signal at once (as by a cluster's SIGTERM, or the out-of-memory killer).
KILLED_RECIPE = """
import os, signal, sys
if "jaxnin.experiments.mnist_lenet" in sys.orig_argv:
    os.kill(os.getpid(), signal.SIGTERM)
"""


def test_a_run_that_fails_is_recorded_and_the_call_ends_with_one_line_and_exit_code_2(
        tmp_path, shared_data):
    """The runner goes on past a failed run (a crash costs one run), writes the table and the
    archive, then tells its caller: exit code 2 and one line naming the run and its record."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(KILLED_RECIPE)
    env = _env(tmp_path / "cache")
    env["PYTHONPATH"] = os.pathsep.join((str(site), str(REPO)))
    out, archive = tmp_path / "out", tmp_path / "a.tar.gz"
    done = _acceptance([*_tiny_args(tmp_path, shared_data, out, archive), "--runs",
                        "smoke-lenet"], env)
    record = _records(out)["smoke-lenet"]
    assert record["status"] == "failed" and record["reason"].startswith("killed by SIGTERM")
    one_error_line(done.returncode, done.stderr, "1 of the 1 runs this call ran did not end ok",
                   "smoke-lenet failed (killed by SIGTERM",
                   f"record is in {out / 'acceptance' / ('cpu-tiny-' + record['date'])}",
                   "rerun the same command")
    assert "acceptance: wrote" in done.stdout and archive.is_file()
    table = next((out / "acceptance").glob("cpu-tiny-*.md")).read_text()
    assert "failed" in table


# ---------------------------------------------------------------------------
# Sample clips and video without PyAV; the archive's size limit.


def test_sample_clips_without_pyav_are_the_rendered_frames(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    out = make_sample_clips.write_sample_clips(tmp_path / "s", clips_per_class=2, size=32)
    files = sorted(out.glob("*/*"))
    assert len(files) == 16 and {f.suffix for f in files} == {".npy"}
    rng = np.random.default_rng(0)
    first = make_sample_clips.render_clip(make_sample_clips.MOTIONS[0], 32, rng)
    np.testing.assert_array_equal(np.load(out / "circle" / "circle_000.npy"), first)
    stack, length = clips.frame_stack(out / "circle" / "circle_000.npy", frames=4, size=32)
    assert stack.shape == (32, 32, 4) and length == len(first)
    with pytest.raises(JaxninError, match="--format mp4 needs PyAV"):
        make_sample_clips.write_sample_clips(tmp_path / "t", clips_per_class=2, format="mp4")
    assert not (tmp_path / "t").exists()


def test_a_video_file_without_pyav_is_one_line_naming_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)
    path = tmp_path / "clip.mp4"
    path.write_bytes(b"\0" * 64)
    with pytest.raises(JaxninError, match=r"clip\.mp4: decoding video needs PyAV") as err:
        clips.frame_stack(path, frames=4, size=32)
    assert "\n" not in str(err.value)


def test_pack_leaves_out_the_largest_curves_first_and_names_them(tmp_path):
    out = tmp_path / "out"
    (out / "r").mkdir(parents=True)
    (out / "r" / "run.json").write_text("{}")
    rng = np.random.default_rng(0)
    for name, size in (("big.png", 60_000), ("small.png", 5_000)):
        (out / "r" / name).write_bytes(rng.bytes(size))  # random: gzip cannot shrink it
    archive = tmp_path / "a.tar.gz"
    omitted = pack.pack(out, [out / "r"], archive, limit=30_000)
    assert omitted == [out / "r" / "big.png"]
    with tarfile.open(archive) as tar:
        assert sorted(tar.getnames()) == ["acceptance/omitted-from-archive.txt", "r/run.json",
                                          "r/small.png"]
        assert tar.extractfile("acceptance/omitted-from-archive.txt").read() == b"r/big.png\n"
    assert pack.pack(out, [out / "r"], archive) == []
