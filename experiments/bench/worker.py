"""One bench job, in this process or in a child:
`python -m experiments.bench.worker '<job json>'`.

A process per measurement gives each its own device memory (JAX reserves most of a GPU when it
starts, which would starve PyTorch beside it), its own allocator peak, and, for a
time-to-accuracy run, a true cold start. The child prints its result as one line:
`BENCH_RESULT {json}`.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "
TORCH_HINT = "install PyTorch to compare (pip install -e '.[bench]' in the checkout)"
REPO = Path(__file__).resolve().parents[2]  # the checkout's root, which holds experiments/


def checkout_env(env: dict | None = None) -> dict:
    """`env` (this process's by default) with the checkout first on PYTHONPATH, so a child
    finds `experiments.bench` and this checkout's jaxnin whatever its working folder."""
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    return env


def run_job(job: dict) -> dict:
    """The job's result dict; never raises: a failure is {"status": "failed", "reason": line}."""
    try:
        return _handler(job)(job)
    except TorchMissing as err:
        return {"status": "skipped", "reason": str(err), "torch_missing": True}
    except Exception as err:  # noqa: BLE001 -- one failed measurement must not end the bench
        return {"status": "failed", "reason": one_line(err)}


class TorchMissing(Exception):
    pass


def _handler(job: dict):
    if job["side"] == "torch":
        try:
            from experiments.bench import torch_reference
        except ImportError as err:
            raise TorchMissing(f"torch is not importable ({one_line(err)}): the PyTorch side "
                               f"was not run; {TORCH_HINT}") from None
        return {"throughput": torch_reference.measure_throughput,
                "tta": torch_reference.train_recipe}[job["kind"]]
    from experiments.bench import jaxnin_side
    return {"throughput": jaxnin_side.measure_throughput, "probe": jaxnin_side.probe}[job["kind"]]


def run_in_child(job: dict, timeout: float) -> dict:
    """run_job in a fresh Python process; its wall time (start-up included) as child_wall_s."""
    from jaxnin.processes import group  # here: a worker child starts without jaxnin

    start = time.perf_counter()
    argv = [sys.executable, "-m", "experiments.bench.worker", json.dumps(job)]
    try:
        # Its own process group, ended with its children at a timeout, Ctrl-C or SIGTERM.
        with group(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                   env=checkout_env()) as child:
            out, err = child.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"status": "failed", "reason": f"timed out after {timeout:g} s (--job-timeout)",
                "child_wall_s": time.perf_counter() - start}
    wall = time.perf_counter() - start
    for line in reversed(out.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return {**json.loads(line[len(RESULT_PREFIX):]), "child_wall_s": wall}
    last = next((l for l in reversed(err.splitlines()) if l.strip()), "")
    return {"status": "failed", "child_wall_s": wall,
            "reason": f"worker {ended(child.returncode)}: {last.strip()[:300]}"}


def child_stdout(argv: list[str], env: dict | None = None) -> str:
    """The standard output of the child command `argv` (`python -m` a module of this checkout),
    run in a process group of its own that a Ctrl-C or SIGTERM of this command ends too. A
    child that fails ends this command in one line: its command, how it ended and its own last
    line on stderr (its `error: ...`), instead of a CalledProcessError that loses it."""
    from jaxnin.errors import JaxninError  # here: a worker child starts without jaxnin
    from jaxnin.processes import group

    with group(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
               env=checkout_env(env)) as child:
        out, err = child.communicate()
    if child.returncode != 0:
        last = next((l.strip() for l in reversed(err.splitlines()) if l.strip()), "no output")
        last = last.removeprefix("error: ")
        command = " ".join(["python", *argv[1:3]]) if argv[1:2] == ["-m"] else argv[0]
        raise JaxninError(f"a child, {command}, failed ({ended(child.returncode)}): {last}")
    return out


def ended(code: int) -> str:
    """How a child ended, from its exit status: 'exit code 2', or 'killed by SIGTERM' where a
    signal ended it (Popen's negative returncode)."""
    if code >= 0:
        return f"exit code {code}"
    try:
        return f"killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"killed by signal {-code}"


def one_line(err: BaseException) -> str:
    first = (str(err).strip().splitlines() or [""])[0]
    return f"{type(err).__name__}: {first[:300]}"


def main(argv) -> int:
    result = run_job(json.loads(argv[0]))
    print(RESULT_PREFIX + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
