"""One acceptance run: its commands as child processes, then its record, written at once.

A run's record folder `<out>/<recipe>/<kind>-<date>/<key>/` gets the console log and the
small result files (history.json, run.json, curves; the bench and the ablation write theirs
there themselves); the checkpoints stay in a scratch workdir. The record itself,
`<out>/acceptance/<kind>-<date>/<key>.json`, says what ran, how long, what it measured and
whether that met the target, so a slot that is killed keeps every run that finished.
"""
import dataclasses
import json
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

from experiments.acceptance.plan import CONFIG, DATA_DIR, RECORDS, WORKDIR, Run
from experiments.bench.overrides import write_run_json
from experiments.bench.worker import ended
from jaxnin.files import write_json
from jaxnin.processes import group, stop

RESULT_FILES = ("history.json", "run.json", "loss.png", "acc.png")
STOP_GRACE_S = 20.0  # SIGTERM lets a recipe save its epoch; then SIGKILL


@dataclasses.dataclass(frozen=True)
class Context:
    out: Path  # --out: experiments/ by default
    scratch: Path  # workdirs with checkpoints, never packed
    kind: str  # device kind slug, e.g. nvidia-h200 (with -tiny for --tiny)
    date: str
    data_dir: str
    env: dict

    def records_dir(self, run: Run) -> Path:
        return self.out / run.recipe / f"{self.kind}-{self.date}" / run.key

    def record_path(self, run: Run) -> Path:
        return self.out / "acceptance" / f"{self.kind}-{self.date}" / f"{run.key}.json"


def execute(run: Run, ctx: Context, timeout_s: float, estimate: tuple[float, str]) -> dict:
    """Run `run`'s commands in turn (stopping at the first failure) and write its record."""
    records, workdir = ctx.records_dir(run), ctx.scratch / f"{ctx.kind}-{ctx.date}" / run.key
    for stale in (records, workdir):
        shutil.rmtree(stale, ignore_errors=True)  # a rerun (--redo, or after a failure)
    records.mkdir(parents=True)
    workdir.parent.mkdir(parents=True, exist_ok=True)
    config = write_config(run, config_path(run, workdir))
    console = records / "console.txt"
    start, status, reason, commands = time.perf_counter(), "ok", None, []
    for command in run.commands:
        argv = command_line(command, workdir, records, ctx, config_path(run, workdir))
        commands.append(shlex.join(["python", *argv[1:]]))
        left = timeout_s - (time.perf_counter() - start)
        status, reason = _run_child(argv, console, ctx.env, left)
        if status != "ok":
            break
    wall = time.perf_counter() - start
    for name in RESULT_FILES if run.kind in ("train", "export") else ():
        if (workdir / name).is_file():
            shutil.copy2(workdir / name, records / name)
    measured = read_measured(run, records)
    record = {"key": run.key, "part": run.part, "label": run.label, "status": status,
              "reason": reason, "device_kind": ctx.kind, "date": ctx.date,
              "commands": commands, "config": config.to_json() if config else None,
              "wall_s": wall, "estimate_s": estimate[0],
              "estimate_source": estimate[1], "records": str(records.relative_to(ctx.out)),
              "measured": measured, "target": dataclasses.asdict(run.target) if run.target else None,
              "met": met(run, measured) if status == "ok" else None}
    ctx.record_path(run).parent.mkdir(parents=True, exist_ok=True)
    write_json(ctx.record_path(run), record)
    return record


def config_path(run: Run, workdir: Path) -> Path:
    """Where the run's config is written for `--from`: beside its workdir, not in it."""
    return workdir.parent / f"{run.key}.config" / "run.json"


def write_config(run: Run, path: Path):
    """Write `run`'s whole config (its recipe's with its overrides) as the run.json that its
    command's `--from` reads; the config, or None for a run that is not a recipe's."""
    config = run.train_config()
    if config is not None and any(CONFIG in command for command in run.commands):
        shutil.rmtree(path.parent, ignore_errors=True)
        write_run_json(config, path)
    return config


def command_line(command: tuple[str, ...], workdir: Path, records: Path, ctx: Context,
                 config: Path) -> list[str]:
    """`python -m MODULE FLAGS`, the plan's placeholders filled in."""
    return [sys.executable, "-m", *(_fill(part, workdir, records, ctx, config)
                                    for part in command)]


def _fill(part: str, workdir: Path, records: Path, ctx: Context, config: Path) -> str:
    return part.replace(WORKDIR, str(workdir)).replace(RECORDS, str(records)).replace(
        DATA_DIR, ctx.data_dir).replace(CONFIG, str(config))


def _run_child(argv: list[str], console: Path, env: dict, timeout_s: float) -> tuple[str, str | None]:
    """('ok', None), ('failed', last line) or ('stopped', why); output appended to `console`."""
    with open(console, "a") as log:
        log.write(f"$ {shlex.join(['python', *argv[1:]])}\n")
        log.flush()
        # Its own process group (the bench's children too), stopped as one, by a Ctrl-C or
        # SIGTERM of this process as well.
        with group(argv, stdout=log, stderr=subprocess.STDOUT, env=env) as child:
            try:
                code = child.wait(timeout=max(timeout_s, 1.0))
            except subprocess.TimeoutExpired:
                stop(child, STOP_GRACE_S, group=True)  # SIGTERM, then SIGKILL
                return "stopped", f"stopped at the budget's end, after {timeout_s:.0f} s"
    if code != 0:
        lines = [l for l in console.read_text(errors="replace").splitlines() if l.strip()]
        return "failed", f"{ended(code)}: {(lines[-1] if lines else '').strip()[:300]}"
    return "ok", None


# ---------------------------------------------------------------------------
# What a finished run measured, read from the files it wrote.


def read_measured(run: Run, records: Path) -> dict:
    reader = {"train": _train_measured, "export": _export_measured, "bench": _bench_measured,
              "ablation": _ablation_measured}[run.kind]
    try:
        return reader(records)
    except (OSError, ValueError, KeyError, IndexError, StopIteration):  # partial or absent
        return {}


def _train_measured(records: Path) -> dict:
    history = json.loads((records / "history.json").read_text())
    run = json.loads((records / "run.json").read_text())
    results = run.get("results", {})
    seconds = sum(r["train_time_s"] for r in history)
    examples = sum(r["examples_per_s"] * r["train_time_s"] for r in history)
    return {"epochs": len(history), "final_test_acc": history[-1]["test_acc"],
            "best_test_acc": max(r["test_acc"] for r in history),
            "examples_per_s": examples / seconds if seconds else None,
            "process_wall_s": results.get("process_wall_s"),
            "compile_time_s": sum(r["compile_time_s"] for r in history),
            "final_test_acc_per_seed": results.get("final_test_acc_per_seed"),
            "device": run.get("device_kind"), "jax_version": run.get("jax_version")}


def _export_measured(records: Path) -> dict:
    lines = (records / "console.txt").read_text(errors="replace").splitlines()
    check = next(l for l in reversed(lines) if "onnxruntime vs JAX" in l)  # export_onnx's line
    return {**_train_measured(records), "export": check[check.index("onnxruntime vs JAX"):]}


def _bench_measured(records: Path) -> dict:
    results = json.loads(next(records.glob("results-*.json")).read_text())
    rows = [{k: r.get(k) for k in ("model", "batch_size", "side", "dtype", "variant", "status",
                                   "examples_per_s", "mfu")} for r in results["throughput"]]
    tta = [{k: t.get(k) for k in ("recipe", "side", "status", "reason", "wall_s",
                                  "time_to_target_s")} for t in results["tta"]]
    return {"targets": results["targets"], "throughput": rows, "tta": tta,
            "device": results["device"].get("kind")}


def _ablation_measured(records: Path) -> dict:
    results = json.loads((records / "results.json").read_text())
    row = results["variants"][0]
    return {k: row.get(k) for k in (
        "final_test_acc_mean", "final_test_acc_std", "best_test_acc_mean", "best_test_acc_std",
        "examples_per_s_all_replicas", "forum")} | {"device": results.get("device")}


def met(run: Run, measured: dict) -> bool | None:
    """Whether the run met its target: every seed's value where it trained several."""
    if run.target is None:
        return None
    value = measured.get(run.target.metric)
    return None if value is None else value >= run.target.at_least
