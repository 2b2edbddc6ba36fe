"""Time to accuracy: a recipe trained in a fresh process, timed from its spawn.

Both sides write history.json after every epoch (jaxnin's recipes do so anyway); the bench
polls it, so each epoch is stamped with the seconds since the child was spawned (interpreter
start, imports, data load, compiles and checkpoints included), to within one poll interval.
"""
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from experiments.bench.worker import RESULT_PREFIX, checkout_env, ended
from jaxnin.processes import group, stop

POLL_S = 0.05
STOP_GRACE_S = 30.0  # from SIGTERM to SIGKILL


def run_timed(command: list[str], workdir: Path, log_path: Path, timeout: float,
              env: dict | None = None) -> dict:
    """Run `command`, stamping each history.json record as it appears; stop it at `timeout`."""
    history_path = workdir / "history.json"
    stamps: list[float] = []
    start = time.perf_counter()
    with open(log_path, "w") as log:
        # Its own process group (PyTorch's compile workers too), stopped as one, by a Ctrl-C
        # or SIGTERM of the bench as well.
        with group(command, stdout=log, stderr=subprocess.STDOUT, env=checkout_env(env)) as child:
            timed_out = False
            while True:
                finished = child.poll() is not None
                now = time.perf_counter() - start
                records = _read_history(history_path)
                stamps += [now] * (len(records) - len(stamps))
                if finished:
                    break
                if now > timeout:
                    timed_out = True
                    # SIGTERM: jaxnin's recipes then finish cleanly
                    stop(child, STOP_GRACE_S, group=True)
                time.sleep(POLL_S)
    wall = time.perf_counter() - start
    history = [{**record, "done_at_s": stamp} for record, stamp in zip(records, stamps)]
    output = Path(log_path).read_text(errors="replace")
    result = {"wall_s": wall, "returncode": child.returncode, "history": history,
              "log": str(log_path)}
    if timed_out:
        return {**result, "status": "timeout",
                "reason": f"stopped after {timeout:g} s (--tta-timeout), {len(history)} epochs done"}
    if child.returncode != 0:
        last = next((l for l in reversed(output.splitlines()) if l.strip()), "")
        return {**result, "status": "failed",
                "reason": f"{ended(child.returncode)}: {last.strip()[:300]}"}
    reported = _reported_result(output) or {}
    if reported and reported.get("status") != "ok":
        return {**result, **reported, "wall_s": wall}
    # A PyTorch child reports the settings it read back; jaxnin's recipes report none here.
    return {**result, "status": "ok",
            **({"settings": reported["settings"]} if "settings" in reported else {})}


def cold_env(cache_root: Path) -> dict:
    """This environment with every compilation cache either side would reuse emptied.

    PyTorch keeps Inductor's and Triton's kernels on disk between processes (the throughput
    runs fill them); JAX reuses compiled programs where JAX_COMPILATION_CACHE_DIR is set, and
    every jaxnin command keeps them under its cache folder unless JAXNIN_COMPILE_CACHE=0. A
    cold start gets none of them.
    """
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    return env | {"TORCHINDUCTOR_CACHE_DIR": str(cache_root / "inductor"),
                  "TRITON_CACHE_DIR": str(cache_root / "triton"), "JAXNIN_COMPILE_CACHE": "0"}


def time_to_target(history: list[dict], target: float | None) -> float | None:
    """Seconds from spawn to the end of the first epoch whose test accuracy reaches `target`."""
    if target is None:
        return None
    return next((r["done_at_s"] for r in history if r["test_acc"] >= target), None)


def breakdown(history: list[dict], wall_s: float) -> dict | None:
    """Where a run's wall time went, from its epoch stamps and its own per-epoch timings.

    before_first_epoch_s: spawn to the start of epoch 1 (interpreter, imports, data, init);
    compile_s: what jaxnin's records count as compiling (absent for PyTorch, whose epoch 1
    includes torch.compile); epochs_s: training and evaluation; after_last_epoch_s: the last
    epoch's end to the process exit (checkpoints, curves, shutdown).
    """
    if not history:
        return None
    first = history[0]
    compile_s = sum(r.get("compile_time_s", 0.0) for r in history) if "compile_time_s" in first \
        else None
    parts = {"before_first_epoch_s": first["done_at_s"] - first["epoch_time_s"]
             - (first.get("compile_time_s") or 0.0),
             "compile_s": compile_s,
             "epochs_s": sum(r["epoch_time_s"] for r in history),
             "after_last_epoch_s": wall_s - history[-1]["done_at_s"]}
    # The rest: between epochs (jaxnin saves checkpoints and logs there).
    return parts | {"between_epochs_s": wall_s - sum(v or 0.0 for v in parts.values())}


def jaxnin_command(module: str, workdir: Path, config_path: Path) -> list[str]:
    """The recipe's own command, training the config stored at `config_path` (a run.json)."""
    return [sys.executable, "-m", f"jaxnin.experiments.{module}", "--from", str(config_path),
            "--workdir", str(workdir)]


def torch_command(job: dict) -> list[str]:
    return [sys.executable, "-m", "experiments.bench.worker", json.dumps(job)]


def _read_history(path: Path) -> list[dict]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):  # not written yet
        return []


def _reported_result(output: str) -> dict | None:
    for line in reversed(output.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    return None
