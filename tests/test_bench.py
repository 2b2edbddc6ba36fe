"""`python -m experiments.bench` at CPU sizes: the shape of what it writes, never its speed."""
import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import jax
import jaxnin
import numpy as np
import optax
import pytest

from experiments.bench import cli, peaks, policy, profile, report, tta
from jaxnin.cli import run_main
from jaxnin.data.pipeline import to_device
from jaxnin.models import create_model
from jaxnin.report.summary import summarize
from jaxnin.train import steps

REPO = Path(__file__).resolve().parents[1]


def bench(args, tmp_path, env=None):
    """The bench as the README runs it: `python -m experiments.bench` from the checkout's root."""
    return subprocess.run([sys.executable, "-m", "experiments.bench", *args, "--out",
                           str(tmp_path)], cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def only_results(tmp_path):
    [json_path] = tmp_path.glob("results-*.json")
    return json.loads(json_path.read_text()), json_path.with_suffix(".md").read_text(), json_path


def hide_torch(tmp_path):
    """A `torch` that fails to import, first on the path: the bench must behave as without it."""
    shadow = tmp_path / "no_torch" / "torch"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("raise ImportError('No module named torch (hidden by "
                                        "the test)')\n")
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(shadow.parent),
                                                        os.environ.get("PYTHONPATH")]))}


def assert_measured(row):
    assert row["status"] == "ok", row
    assert math.isfinite(row["examples_per_s"]) and row["examples_per_s"] > 0
    assert row["counted_examples"] == row["examples_per_epoch"] == row["steps"] * row["batch_size"]
    assert len(row["epoch_times_s"]) == row["repeats"] and min(row["epoch_times_s"]) > 0
    assert math.isfinite(row["final_train_loss"])


def test_without_torch_the_bench_says_so_and_measures_jaxnin(tmp_path):
    """Each measurement in its own child process, as on a GPU; torch made unimportable."""
    out = tmp_path / "out"
    result = bench(["--tiny", "--models", "lenet", "--dtypes", "float32", "--skip-tta",
                    "--profile"], out, hide_torch(tmp_path))
    assert result.returncode == 0, result.stderr
    results, md, json_path = only_results(out)
    assert json_path.name == f"results-cpu-{results['date']}-tiny-throughput.json"
    assert results["device"]["kind"] == "cpu" and results["device"]["bf16_peak_flops"] is None
    assert results["device"]["matmul_bf16_flops"] > 0
    assert results["command"].startswith("python -m experiments.bench --tiny")
    assert results["versions"]["jax"] and "torch" not in results["versions"]

    jaxnin_rows = [r for r in results["throughput"] if r["side"] == "jaxnin"]
    assert [report.variant(r) for r in jaxnin_rows] == ["float32-strict", "float32-tf32"]
    strict, tf32 = jaxnin_rows
    # The policy as asked, read back from JAX in the child; a CPU records tf32, runs nothing.
    assert strict["policy"]["jax_default_matmul_precision"] == "float32"
    assert strict["settings"]["jax_default_matmul_precision"] == "float32"
    assert tf32["policy"]["jax_default_matmul_precision"] == "tensorfloat32"
    assert tf32["status"] == "skipped" and tf32["reason"].startswith("cpu: no tf32")
    for row in results["throughput"]:  # every row, skipped ones too, says how it runs
        assert row["policy"]["name"] and row["settings"]["batch_size"] == 16
        assert row["settings"]["data_placement"] == policy.DATA_PLACEMENT[
            "jaxnin" if row["side"] == "jaxnin" else row["variant"]]
    assert strict["settings"]["versions"]["jaxlib"] and strict["settings"]["usable_cpus"] >= 1
    assert "xla_flags" in strict["settings"] and "env" in strict["settings"]
    assert_measured(strict)
    assert strict["child_wall_s"] > 0 and strict["mfu"] is None  # no known peak for a CPU
    assert strict["peak_memory_bytes"] > 0 and "memory_analysis" in strict["peak_memory_source"]
    lenet = summarize(create_model("lenet"), (28, 28, 1)).total_flops
    assert strict["train_flops_per_example"] == 3 * lenet
    profile = strict["profile"]  # --profile: one more epoch, traced
    assert profile["busy_s"] > 0 and profile["top"] and "conv" in str(profile["top"])
    assert sum(c["share"] for c in profile["by_category"].values()) == pytest.approx(1)
    torch_rows = [r for r in results["throughput"] if r["side"] == "torch"]
    assert [report.variant(r) for r in torch_rows] == [
        "seed_pipeline", "fp32-strict", "fp32-tf32", "tuned", "cpu"]
    assert all(r["status"] == "skipped" and ("torch is not importable" in r["reason"]
                                             or r["reason"].startswith("cpu: no tf32"))
               for r in torch_rows)
    assert any("torch is not importable" in note for note in results["notes"])
    assert [t["met"] for t in results["targets"]] == [None] * len(report.TARGETS)

    assert "## Training examples/sec" in md and "torch is not importable" in md
    assert "## Where jaxnin's epoch goes" in md
    row = next(l for l in md.splitlines() if l.startswith("| lenet | 16 | 28 |"))
    assert row.count("skipped") == 6 and row.split(" | ")[5] == "–"  # bf16 was not asked for
    assert "lenet | 16 | jaxnin | float32-strict" in md
    settings = md.split("## Every row's precision policy and settings")[1].split("\n## ")[0]
    assert settings.count("| lenet | 16 |") == len(results["throughput"])
    assert "(jax_default_matmul_precision=float32)" in settings and "cpu: no tf32" in settings


@pytest.mark.slow  # NiN and VGG compile for about a minute on 2 CPU cores
def test_tiny_bench_in_process_covers_every_model(tmp_path, capsys):
    assert cli.main(["--tiny", "--no-torch", "--skip-tta", "--in-process", "--dtypes",
                     "float32", "--precisions", "strict", "--out", str(tmp_path)]) == 0
    results, md, _ = only_results(tmp_path)
    rows = results["throughput"]
    assert [(r["model"], r["batch_size"], r["resize"]) for r in rows] == [
        ("nin", 8, 67), ("vgg11", 8, 32), ("lenet", 16, None)]
    for row in rows:
        assert_measured(row)
    assert rows[1]["model_options"] == {"dropout": 0.0, "width_divisor": 8, "hidden": 256}
    assert [r["model"] for r in results["ratios"]] == ["nin", "vgg11", "lenet"]
    assert all(r["vs_tuned"] is None for r in results["ratios"])
    assert "torch side not run (--no-torch)" in results["notes"]
    for line in ("| nin | 8 | 67 |", "| vgg11 | 8 | 32 |", "| lenet | 16 | 28 |"):
        assert line in md
    assert "wrote " in capsys.readouterr().out


def test_time_to_accuracy_stamps_each_epoch_of_a_cold_start(shared_data, mnist, data_cache,
                                                            tmp_path):
    env = {"JAXNIN_CACHE_DIR": str(data_cache)}
    result = bench(["--tiny", "--tta-only", "--tta-recipes", "lenet", "--no-torch",
                    "--set", f"data_dir={shared_data}", "--set", "epochs=2"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    results, md, json_path = only_results(tmp_path)
    assert json_path.name.endswith("-tiny-tta.json") and results["throughput"] == []
    [ours, theirs] = results["tta"]
    assert (ours["side"], ours["status"], theirs["status"]) == ("jaxnin", "ok", "skipped")
    assert [r["epoch"] for r in ours["history"]] == [1, 2]
    stamps = [r["done_at_s"] for r in ours["history"]]
    assert 0 < stamps[0] < stamps[1] <= ours["wall_s"]
    assert ours["own_process_wall_s"] <= ours["wall_s"]
    assert ours["config"]["limit_train"] == 256 and ours["config"]["epochs"] == 2
    assert "--from" in ours["command"]  # the recipe's own command, from this very config
    parts = ours["breakdown"]
    assert parts["before_first_epoch_s"] > 0 and parts["compile_s"] > 0
    assert sum(parts.values()) == pytest.approx(ours["wall_s"])
    lenet = next(t for t in results["targets"] if "LeNet" in t["name"])
    assert lenet["met"] is None and "cut short" in lenet["note"]
    assert "| lenet | jaxnin | ok | 2 |" in md


# A stand-in for torch: any `torch...` import gives a module whose every attribute is a
# placeholder class, so the PyTorch side's modules import (not run) without torch.
STUB_TORCH = """
import importlib.abc, importlib.machinery, sys, types

class Placeholder(type):  # torch.utils.data.Dataset and the like: the class itself again
    def __getattr__(cls, name):
        if name.startswith("__"):
            raise AttributeError(name)
        return cls

class Anything(metaclass=Placeholder):
    def __init__(self, *args, **kwargs): pass

class StubTorch(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "torch":
            return importlib.machinery.ModuleSpec(name, self, is_package=True)
    def create_module(self, spec):
        module = types.ModuleType(spec.name)
        module.__path__, module.__getattr__ = [], lambda name: Anything
        return module
    def exec_module(self, module): pass

sys.meta_path.insert(0, StubTorch())
"""


def test_the_pytorch_child_imports_nothing_of_jax():
    """Every module a PyTorch child runs (the worker, both torch handlers and what they import),
    with torch stubbed: none may load JAX, flax, optax or TensorFlow (CI has no torch)."""
    code = STUB_TORCH + (
        "import json, sys\n"
        "from experiments.bench import policy, worker\n"
        "handlers = [worker._handler({'side': 'torch', 'kind': k}) for k in ('throughput', 'tta')]\n"
        "print(json.dumps([[h.__module__ for h in handlers], policy.loaded(),"
        " 'jaxnin.data.vision' in sys.modules]))")
    modules, jax_family, data_loader = torch_child(code)
    assert modules == ["experiments.bench.torch_reference"] * 2 and data_loader
    assert jax_family == []


# PyTorch runs in child processes here, as in the bench: loading triton (which torch's optimizers
# import) into a process that already holds TensorFlow (the data fixtures build with tfds)
# crashes it, and JAX's threads do not survive the seed pipeline's fork.
def torch_child(code: str):
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def test_torch_references_are_the_seeds_nets_and_train_at_tiny_size():
    pytest.importorskip("torch")
    nets = [("nin", 224, {}), ("lenet", 28, {}),
            ("vgg11", 32, {"width_divisor": 8, "hidden": 256})]
    lenet = jaxnin.recipe("mnist_lenet").replace(batch_size=16).to_json()
    nin = jaxnin.recipe("fashion_nin").replace(batch_size=4, resize=67).to_json()
    job = {"config": lenet, "model": "lenet", "batch_size": 16, "resize": None, "steps": 3,
           "repeats": 2, "warmup_steps": 1, "compile": False, "compile_mode": "default",
           "num_workers": 2}
    jobs = [{**job, "variant": v, "policy": policy.row_policy("torch", v, p)} for v, p in (
        ("seed_pipeline", None), ("fp32", "strict"), ("tuned", None), ("cpu", "strict"))] + [
        {**job, "config": nin, "model": "nin", "resize": 67, "batch_size": 4, "steps": 1,
         "repeats": 1, "variant": v, "policy": policy.row_policy("torch", v, "strict")}
        for v in ("tuned", "cpu")]
    counts, rows = torch_child(
        "import json; from experiments.bench import torch_reference as r; print(json.dumps([["
        f"sum(p.numel() for p in r.create_model(n, s, **o).parameters()) for n, s, o in {nets}"
        f"], [r.measure_throughput(job) for job in {jobs}]]))")
    # The same nets: parameter counts equal jaxnin's.
    for (name, size, options), theirs in zip(nets, counts):
        assert theirs == summarize(create_model(name, **options), (size, size, 1)).total_params
    for job, row in zip(jobs, rows):
        assert_measured({**job, **row})
        assert row["versions"]["torch"] and row["peak_memory_bytes"] is None  # CPU
        got = row["settings"]  # the policy as set, read back from torch; no JAX loaded
        assert (got["matmul_allow_tf32"], got["cudnn_allow_tf32"]) == (
            job["policy"]["matmul_allow_tf32"], job["policy"]["cudnn_allow_tf32"])
        assert got["cudnn_benchmark"] == (job["variant"] == "tuned") and got["num_threads"] >= 1
        assert got["jax_family_loaded"] == []
    assert rows[2]["compiled"] is False and rows[4]["counted_examples"] == 4


def test_torch_time_to_accuracy_writes_history_each_epoch(shared_data, mnist, data_cache,
                                                         tmp_path, monkeypatch):
    pytest.importorskip("torch")
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(data_cache))
    config = jaxnin.recipe("mnist_lenet").replace(data_dir=str(shared_data), epochs=2,
                                                  limit_train=160, limit_test=50)
    job = {"config": config.to_json(), "side": "torch", "kind": "tta",
           "compile": False, "compile_mode": "default", "workdir": str(tmp_path),
           "policy": policy.row_policy("torch", "fp32", "strict")}
    outcome = tta.run_timed(tta.torch_command(job), tmp_path, tmp_path / "log", timeout=300)
    assert outcome["status"] == "ok", outcome
    history = outcome["history"]
    assert [r["epoch"] for r in history] == [1, 2]
    assert all(0 <= r["test_acc"] <= 1 and math.isfinite(r["train_loss"]) for r in history)
    assert 0 < history[0]["done_at_s"] < history[1]["done_at_s"] <= outcome["wall_s"]
    assert outcome["settings"]["jax_family_loaded"] == []  # data loading included
    assert outcome["settings"]["matmul_allow_tf32"] is False


def test_each_fp32_row_runs_under_one_policy_on_both_sides():
    settings = cli.Settings.from_args(cli.parser().parse_args(["--tiny", "--models", "lenet"]))
    jobs = {(j["side"], report.variant(j)): j for j in cli.throughput_jobs(settings)}
    assert list(jobs) == [("jaxnin", "float32-strict"), ("jaxnin", "float32-tf32"),
                          ("jaxnin", "bfloat16"), ("torch", "seed_pipeline"),
                          ("torch", "fp32-strict"), ("torch", "fp32-tf32"), ("torch", "tuned"),
                          ("torch", "cpu")]
    for precision, allow in (("strict", False), ("tf32", True)):
        ours, theirs = jobs["jaxnin", f"float32-{precision}"], jobs["torch", f"fp32-{precision}"]
        assert ours["policy"]["jax_default_matmul_precision"] == (
            policy.JAX_MATMUL_PRECISION[precision])
        assert theirs["policy"]["matmul_allow_tf32"] is theirs["policy"]["cudnn_allow_tf32"] \
            is allow
        assert ours["policy"]["matmul"] == theirs["policy"]["matmul"] == (
            "tf32" if allow else "float32")
    assert jobs["torch", "seed_pipeline"]["policy"]["name"] == "torch-default"
    for kind in (("jaxnin", "bfloat16"), ("torch", "tuned")):
        assert "optimizer state" in jobs[kind]["policy"]["stays_fp32"]
    # A CPU records the tf32 rows without running them; the student's loop runs only there.
    assert policy.not_run_reason(jobs["jaxnin", "float32-tf32"], "cpu") == policy.CPU_NO_TF32
    assert policy.not_run_reason(jobs["torch", "fp32-tf32"], "gpu") is None
    assert policy.not_run_reason(jobs["torch", "cpu"], "gpu") == policy.NOT_ON_CPU
    assert policy.not_run_reason(jobs["torch", "cpu"], "cpu") is None


def test_cpu_compare_is_the_cpu_table():
    settings = cli.Settings.from_args(cli.parser().parse_args(["--cpu-compare"]))
    jobs = cli.throughput_jobs(settings)
    assert [(j["model"], j["side"], report.variant(j), j["batch_size"], j["steps"], j["resize"])
            for j in jobs] == [
        ("lenet", "jaxnin", "float32-strict", 16, 3750, None),
        ("lenet", "torch", "cpu", 16, 3750, None),
        ("nin", "jaxnin", "float32-strict", 128, 32, 67),
        ("nin", "torch", "cpu", 128, 32, 67)]
    assert settings.skip_tta and settings.repeats == 2 and settings.file_suffix == (
        "-cpu-compare-throughput")


def test_targets_compare_like_with_like():
    row = lambda side, name, speed, resize=224: {
        "side": side, "model": "nin", "batch_size": 128, "resize": resize, "status": "ok",
        "examples_per_s": speed, **({"dtype": name} if side == "jaxnin" else {"variant": name})}
    rows = [row("jaxnin", "float32", 150.0), row("jaxnin", "bfloat16", 300.0),
            row("torch", "fp32", 200.0), row("torch", "tuned", 100.0)]
    [ratio] = report.ratios(rows)
    assert (ratio["jaxnin_best"], ratio["vs_tuned"], ratio["vs_best_torch"]) == (
        "bfloat16", 3.0, 1.5)
    # Under one policy: jaxnin fp32 strict against torch fp32 strict, and so on.
    policies = [row("jaxnin", "float32", 120.0) | {"precision": "strict"},
                row("torch", "fp32", 60.0) | {"precision": "strict"},
                row("torch", "fp32", 80.0) | {"precision": "tf32"},
                row("torch", "cpu", 40.0) | {"precision": "strict"}]
    [same] = report.ratios(policies)
    assert same["same_policy"] == {"fp32_strict": 2.0, "fp32_tf32": None, "bf16": None,
                                   "cpu_loop": 3.0}
    results = {"ratios": [ratio], "tta": [], "settings": {"tta_full_recipe": True}}
    nin128 = report.targets(results)[0]
    assert (nin128["measured"], nin128["met"]) == (3.0, True)
    at_67 = report.ratios([{**r, "resize": 67} for r in rows])
    assert report.targets({**results, "ratios": at_67})[0]["met"] is None


@pytest.mark.parametrize("kind, tflops", [
    ("NVIDIA H100 80GB HBM3", 989.5), ("NVIDIA H100 PCIe", 756.5), ("NVIDIA H200", 989.5),
    ("NVIDIA A100-SXM4-80GB", 312.0), ("NVIDIA A10", 125.0), ("NVIDIA L40S", 362.05),
    ("cpu", None)])
def test_bf16_peaks_by_device_kind(kind, tflops):
    peak, source = peaks.bf16_peak(kind)
    assert peak == (tflops and tflops * 1e12) and source
    assert peaks.mfu(1000.0, 1e9, peak) == (tflops and 1e12 / (tflops * 1e12))


def test_a_gpu_trace_is_summarised_from_its_stream_kernels(tmp_path):
    """The perfetto layout of a GPU trace: kernels on "Stream" threads of a /device: process,
    beside derived lines that span the same time again and host events that are not kernels."""
    meta = lambda kind, pid, name, tid=None: {"ph": "M", "name": kind, "pid": pid, "tid": tid,
                                              "args": {"name": name}}
    span = lambda pid, tid, name, dur: {"ph": "X", "pid": pid, "tid": tid, "name": name,
                                        "ts": 0, "dur": dur}
    events = [meta("process_name", 1, "/device:GPU:0"), meta("process_name", 2, "/host:CPU"),
              meta("thread_name", 1, "Stream #13(Compute)", 7),
              meta("thread_name", 1, "XLA Ops", 8),
              span(1, 7, "sm90_xmma_wgrad_implicit_gemm", 600_000),
              span(1, 7, "loop_transpose_fusion", 300_000),
              span(1, 7, "input_reduce_fusion", 100_000),
              span(1, 8, "fusion.12", 1_000_000), span(2, 3, "PjitFunction", 2_000_000)]
    path = tmp_path / "perfetto_trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"traceEvents": events}).encode()))
    summary = profile.summarize_trace(path, wall_s=2.0)
    assert summary["source"] == "device streams"
    assert summary["busy_s"] == pytest.approx(1.0)
    assert summary["busy_share_of_wall"] == pytest.approx(0.5)
    assert [op["name"] for op in summary["top"]] == [
        "sm90_xmma_wgrad_implicit_gemm", "loop_transpose_fusion", "input_reduce_fusion"]
    shares = {k: v["share"] for k, v in summary["by_category"].items()}
    assert shares == pytest.approx({"convolutions and matmuls": 0.6, "copies and transposes": 0.3,
                                    "other kernels (elementwise, reductions, pools)": 0.1})


CPU_HLO = """HloModule jit_step, entry_computation_layout={()->f32[]}

%fused_conv (p0: f32[2], p1: f32[2]) -> f32[2] {
  %p0 = f32[2]{0} parameter(0)
  %convolution.1 = f32[2]{0} convolution(%p0, %p1), window={size=1}
}

%fused_reduce (p0: f32[2]) -> f32[] {
  %p0 = f32[2]{0} parameter(0)
  %reduce.2 = f32[] reduce(%p0, %c), dimensions={0}
}

%fused_convert (p0: f32[2]) -> bf16[2] {
  %p0 = f32[2]{0} parameter(0)
  %convert.3 = bf16[2]{0} convert(%p0)
}

ENTRY %main () -> f32[] {
  %ynn_fusion.4 = f32[2]{0} fusion(%a, %b), kind=kCustom, calls=%fused_conv
  %ynn_fusion.5 = f32[] fusion(%ynn_fusion.4), kind=kCustom, calls=%fused_reduce
  %convert_fusion = bf16[2]{0} fusion(%a), kind=kLoop, calls=%fused_convert
}
"""


def test_a_cpu_trace_names_its_library_fusions_by_the_hlo_they_hold(tmp_path):
    """XLA:CPU runs convolutions as "ynn_fusion.N" (YNNPACK): by name they would count as
    elementwise, and "convert_fusion" (a dtype cast) as a convolution."""
    contents = profile.fusion_contents([CPU_HLO])
    assert contents == {("jit_step", "ynn_fusion.4"): "parameter convolution",
                        ("jit_step", "ynn_fusion.5"): "parameter reduce",
                        ("jit_step", "convert_fusion"): "parameter convert"}
    meta = lambda kind, tid, name: {"ph": "M", "name": kind, "pid": 1, "tid": tid,
                                    "args": {"name": name}}
    span = lambda name, dur: {"ph": "X", "pid": 1, "tid": 7, "name": name, "ts": 0, "dur": dur,
                              "args": {"hlo_module": "jit_step", "hlo_op": name}}
    events = [meta("process_name", None, "/host:CPU"), meta("thread_name", 7, "tf_XLAEigen"),
              span("ynn_fusion.4", 500_000), span("ynn_fusion.5", 200_000),
              span("convert_fusion", 100_000), span("copy.6", 100_000),
              span("SlinkyThreadPool::Await", 100_000)]
    path = tmp_path / "perfetto_trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"traceEvents": events}).encode()))
    summary = profile.summarize_trace(path, wall_s=2.0, contents=contents)
    assert summary["source"] == "XLA executor threads on the host"
    shares = {k: v["share"] for k, v in summary["by_category"].items()}
    assert shares == pytest.approx({"convolutions and matmuls": 0.5, "copies and transposes": 0.1,
                                    "other kernels (elementwise, reductions, pools)": 0.3,
                                    "waits for the runtime's thread pool": 0.1})
    assert summary["top"][0] == {"name": "ynn_fusion.4", "seconds": 0.5,
                                 "share": pytest.approx(0.5), "holds": "parameter convolution"}


def test_the_compiled_epoch_text_holds_the_step_and_its_fusions():
    rng = np.random.default_rng(0)
    split = to_device(rng.integers(0, 256, (16, 28, 28, 1), dtype=np.uint8),
                      rng.integers(0, 10, 16).astype(np.int32))
    state = steps.create_train_state(create_model("lenet"), optax.sgd(0.1), jax.random.key(0),
                                     (28, 28, 1))
    (text,) = steps.compiled_epoch_text(state, split, jax.random.key(0), batch_size=8)
    contents = profile.fusion_contents([text])
    assert text.startswith("HloModule jit__indexed_step")
    assert contents and all(module == "jit__indexed_step" for module, _ in contents)
    assert any("convolution" in holds.split() for holds in contents.values())


@pytest.mark.parametrize("flags, says", [
    (["--models", "nin,resnet"], "--models 'nin,resnet': choose from nin, vgg11, lenet"),
    (["--batch-sizes", "128,0"], "--batch-sizes '128,0': give positive integers"),
    (["--skip-tta", "--tta-only"], "--skip-tta and --tta-only exclude each other"),
    (["--precisions", "fp16"], "--precisions 'fp16': choose from strict, tf32"),
    (["--cpu-compare", "--tiny"], "--cpu-compare and --tiny exclude each other")])
def test_bad_flags_are_one_line_before_anything_runs(flags, says, tmp_path, capsys):
    assert run_main(cli.main, [*flags, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {says}") and err.count("\n") == 1
    assert not list(tmp_path.iterdir())


def test_time_to_accuracy_children_start_cold(tmp_path, monkeypatch):
    """jaxnin's own compilation cache (on by default) is off for a cold-start child."""
    monkeypatch.setenv("JAX_COMPILATION_CACHE_DIR", str(tmp_path / "warm"))
    env = tta.cold_env(tmp_path / "caches")
    assert env["JAXNIN_COMPILE_CACHE"] == "0" and "JAX_COMPILATION_CACHE_DIR" not in env


def test_a_cpu_kernel_lasts_until_its_end_event_and_side_by_side_kernels_count_once(tmp_path):
    """XLA:CPU records only the launch of a kernel that runs on its thread pool (an Eigen
    convolution) as a span; the kernel is done at its "end: NAME" event. Counting launches
    alone showed LeNet's epoch a quarter busy when a kernel was in progress nearly all of it."""
    meta = lambda kind, tid, name: {"ph": "M", "name": kind, "pid": 1, "tid": tid,
                                    "args": {"name": name}}
    span = lambda name, ts, dur, tid=7: {"ph": "X", "pid": 1, "tid": tid, "name": name,
                                         "ts": ts, "dur": dur, "args": {}}
    events = [meta("process_name", None, "/host:CPU"), meta("thread_name", 7, "tf_XLAEigen"),
              meta("thread_name", 8, "tf_XLAEigen"),
              # a convolution launched for 0.1 s, done at 1.0 s; a fusion beside it on the
              # other thread (0.2-0.6 s); a reduce after it (1.0-1.5 s)
              span("convolution.1", 0, 100_000), span("ThreadpoolListener::StartRegion", 100_000, 0),
              span("end: convolution.1", 1_000_000, 1),
              span("add_fusion", 200_000, 400_000, tid=8), span("wrapped_reduce", 1_000_001, 499_999),
              span("ThunkExecutor::Execute", 0, 1_500_000)]
    path = tmp_path / "perfetto_trace.json.gz"
    path.write_bytes(gzip.compress(json.dumps({"traceEvents": events}).encode()))
    summary = profile.summarize_trace(path, wall_s=2.0)
    assert summary["busy_s"] == pytest.approx(1.5)
    assert summary["busy_share_of_wall"] == pytest.approx(0.75)
    assert summary["top"][0]["name"] == "convolution.1"
    assert summary["top"][0]["seconds"] == pytest.approx(1.0)
    assert summary["kernel_s"] == pytest.approx(1.9)  # 1.0 + 0.4 + 0.5: shares are of this


def test_the_torch_side_takes_every_recipe_the_cpu_table_times():
    """Every TrainConfig field is mirrored, pinned or irrelevant to the PyTorch loop: a new
    field (cpu_convolutions was one) must not make the CPU table refuse the recipes."""
    for model, job in cli.CPU_COMPARE.items():
        config = cli.recipe(cli.RECIPES[model]).to_json()
        assert policy.torch_refusal({**config, **job["config"]}) is None, model


# --- the bench's dev scripts that run children: one line, the child's own ---------------------

FAILING_CHILD = """
import os, sys
if "--one" in sys.orig_argv:
    print("error: the child's own reason, said in one line", file=sys.stderr, flush=True)
    os._exit(2)
"""


def test_cpu_convolutions_refuses_a_resize_below_the_model_s_minimum_before_any_child(
        monkeypatch, capsys):
    from experiments.bench import cpu_convolutions

    monkeypatch.setattr(cpu_convolutions, "child_stdout", lambda argv: pytest.fail("a child ran"))
    for model, says in (("nin", "NiN needs inputs of at least 67x67, got 5x5"),
                        ("vgg11", "needs inputs of at least 32x32, got 5x5")):
        code = run_main(cpu_convolutions.main, ["--model", model, "--resize", "5"])
        err = capsys.readouterr().err
        assert code == 2 and err.count("\n") == 1 and says in err and "--resize" in err, err


def test_a_failing_child_of_a_dev_script_ends_it_in_one_line_with_the_child_s_own(
        tmp_path, monkeypatch, capsys):
    from experiments.bench import cpu_convolutions

    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FAILING_CHILD)
    monkeypatch.setenv("PYTHONPATH", str(site))
    code = run_main(cpu_convolutions.main, ["--model", "lenet", "--rounds", "1", "--steps", "1"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert err.startswith("error: a child, python -m experiments.bench.cpu_convolutions, failed "
                          "(exit code 2): the child's own reason, said in one line"), err


def test_a_child_killed_by_a_signal_is_named_so():
    from experiments.bench.worker import child_stdout
    from jaxnin.errors import JaxninError

    kill = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(JaxninError, match=r"failed \(killed by SIGKILL\): no output"):
        child_stdout([sys.executable, "-c", kill])
    assert child_stdout([sys.executable, "-c", "print('fine')"]) == "fine\n"


def test_first_epoch_ends_in_one_line_with_its_recipe_child_s_own(tmp_path, monkeypatch):
    """Its recipe command is the recipe's own (`--from` its config); a child that fails ends
    the script with the child's line (SystemExit said it without `error:`, exit code 1)."""
    from experiments.bench import first_epoch
    from jaxnin.errors import JaxninError

    module, config = first_epoch.RECIPES["lenet, seed 002"]
    config = config.replace(data_dir=str(tmp_path / "no-data"), limit_train=64)
    command = first_epoch.jaxnin_command(module, config, tmp_path / "run")
    assert command[1:5] == ["-m", "jaxnin.experiments.mnist_lenet", "--from",
                            str(tmp_path / "run.config" / "run.json")]
    with pytest.raises(JaxninError, match=r"python -m jaxnin.experiments.mnist_lenet, did not "
                       r"finish its first epoch \(failed\): exit code 2: error: .*no-data"):
        first_epoch.timed(command, tmp_path / "run", tmp_path / "log", dict(os.environ))


def test_a_bench_stopped_by_sigterm_keeps_what_it_measured_marked_partial_and_says_where(
        tmp_path):
    """SIGTERM after the first row: the files on disk hold that row, say they are partial and
    why, and list every measurement not made; the one line names them (it said "nothing was
    saved" beside them)."""
    import signal
    import time

    from faults import one_error_line

    out = tmp_path / "out"
    bench_process = subprocess.Popen(
        [sys.executable, "-m", "experiments.bench", "--tiny", "--no-torch", "--models",
         "lenet,nin", "--out", str(out)], cwd=REPO, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True)
    try:
        for line in bench_process.stdout:
            if "jaxnin float32-strict:" in line:  # the first row is measured and saved
                break
        else:
            pytest.fail(bench_process.stderr.read())
        time.sleep(0.5)
        bench_process.send_signal(signal.SIGTERM)
        _, err = bench_process.communicate(timeout=60)
    finally:
        bench_process.kill()
    results, md, json_path = only_results(out)
    line = one_error_line(bench_process.returncode, err, "interrupted (Ctrl-C or SIGTERM)",
                          f"saved in {json_path} and {json_path.with_suffix('.md')}",
                          "marked partial", "rerun the same command")
    assert results["complete"] is False and results["stopped"].startswith(
        "interrupted (Ctrl-C or SIGTERM) at ")
    assert results["throughput"][0]["status"] == "ok"
    assert results["pending"] and f"the {len(results['pending'])} not made listed" in line
    assert "time to accuracy, nin, jaxnin" in results["pending"]
    assert any(p.startswith("nin b8 jaxnin") for p in results["pending"])
    done = {report.label(row) for row in results["throughput"]}
    assert not done & set(results["pending"])
    assert "**partial results**: interrupted (Ctrl-C or SIGTERM)" in md
    not_measured = md.split("## Not measured")[1]
    assert all(label in not_measured for label in results["pending"])


def test_complete_results_say_so_and_list_nothing_pending():
    results = {"device": {}, "date": "d", "command": "c", "versions": {}, "notes": [],
               "throughput": [], "tta": [], "targets": [], "ratios": [], "pending": [],
               "complete": True, "stopped": None}
    assert "partial" not in report.markdown(results)
    assert "Not measured" not in report.markdown(results)
