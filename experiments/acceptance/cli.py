"""`python -m experiments.acceptance`: the GPU acceptance run, most important part first.

    python -m experiments.acceptance [--parts smoke,accuracy,speed,ablation] [--runs KEY,...]
                                     [--budget-s S] [--data-dir DIR] [--out DIR]
                                     [--archive PATH] [--tiny] [--redo] [--plan]

Run it from the root of a jaxnin checkout (it is a tool of the repository, not part of the
installed package); experiments/acceptance/README.md has the steps for a GPU host.

Runs each recipe as its own child process (a crash costs one run), with the recipes' own
flags, and writes each run's record as soon as it ends, then the summary table
`<out>/acceptance/<device-kind>-<date>.md` (and, with --archive, the packed records). Runs
already recorded ok for this device kind are skipped unless --redo, so the next slot
continues the work. With --budget-s it starts no run whose estimate (estimate.py beside this
file) exceeds the time left, says which it skipped and why, and stops a run that
overruns at the end of the budget. A run that fails or is stopped costs that run only; the
call then ends with exit code 2 and one line naming those runs and their records.
"""
import argparse
import dataclasses
import os
import re
import subprocess
import sys
import time
from pathlib import Path

from jaxnin import guard
from jaxnin.cli import command_parser, options_from
from jaxnin.errors import JaxninError
from jaxnin.options import POSITIVE, option

REPO = Path(__file__).resolve().parents[2]
# The code the records depend on: the commit in the table's header is marked where it differs.
CODE = ("jaxnin", "experiments/*.py", "pyproject.toml")
PROBE = "import jax; d = jax.devices()[0]; print(d.device_kind); print(d.platform)"


@dataclasses.dataclass(frozen=True)
class AcceptanceOptions:
    """The runner's command line."""
    parts: str | None = option(None, "comma-separated subset of smoke,accuracy,speed,ablation "
                               "[all]")
    runs: str | None = option(None, "comma-separated run keys (see --plan) within --parts [all]")
    plan: bool = option(False, "print the runs with their estimated GPU time and exit")
    budget_s: float | None = option(None, "seconds this call may take; runs whose estimate "
                                    "does not fit are skipped and named [no limit]",
                                    within=POSITIVE)
    data_dir: str | None = option(None, "folder with fashion_mnist/ and mnist/, four .gz files "
                                  "each [$JAXNIN_DATA_DIR]", path=True)
    out: str = option("experiments", "where records go", path=True)
    scratch: str = option("runs/acceptance", "training workdirs (checkpoints), never packed",
                          path=True)
    archive: str | None = option(None, "after every run, pack this call's records into this "
                                 ".tar.gz (at most 16 MiB; unpack with tar -xzf ARCHIVE -C OUT)",
                                 path=True)
    tiny: bool = option(False, "CPU sizes and one run of each kind, for tests")
    redo: bool = option(False, "rerun runs already recorded for this device kind")


def main(argv) -> int:
    # Every value is checked before any run: a bad one must not cost the first part's hour.
    args = options_from(AcceptanceOptions, _parser().parse_args(argv))
    _check_archive(args.archive)
    import jax

    # This process only plans: were it to touch the GPU, JAX would reserve its memory here
    # for the whole run, away from the children that measure.
    jax.config.update("jax_platforms", "cpu")
    from experiments.acceptance import estimate, pack, plan, runner, summary

    everything = plan.plan(args.tiny)
    chosen = plan.select(everything, args.parts, args.runs)
    if args.plan:
        print(estimate.table(chosen))
        return 0
    started = time.perf_counter()
    deadline = started + args.budget_s if args.budget_s else float("inf")
    data_dir = _data_dir(args.data_dir)
    out = Path(args.out)
    env = child_env(args.tiny, Path(args.scratch))
    device = probe_device(env)
    kind = device_slug(device) + ("-tiny" if args.tiny else "")
    ctx = runner.Context(out=out, scratch=Path(args.scratch), kind=kind,
                         date=time.strftime("%Y-%m-%d"), data_dir=data_dir, env=env)
    records = summary.latest_records(out, kind)
    not_run = {r.key: "not chosen (--parts, --runs)" for r in everything if r not in chosen}
    summary_path = out / "acceptance" / f"{kind}-{ctx.date}.md"
    written: list[Path] = [summary_path]
    ran = []  # this call's runs, whatever their end
    guard.keeping(lambda: kept_line(chosen, records, out / "acceptance"))
    print(f"acceptance: {device} -> {kind}; {len(chosen)} runs planned, budget "
          f"{f'{args.budget_s:g} s' if args.budget_s else 'none'}", flush=True)

    def save():
        header = _header(device, ctx, args, argv)
        summary.write_summary(summary_path, everything, records, not_run, header)
        if args.archive:
            omitted = pack.pack(out, written, Path(args.archive))
            if omitted:
                print(f"acceptance: {len(omitted)} files left out of {args.archive} to stay "
                      f"within 16 MiB (named inside it)", flush=True)

    for run in chosen:
        prior = records.get(run.key)
        if prior and prior["status"] == "ok" and not args.redo:
            print(f"  {run.key}: recorded {prior['date']}, skipped (--redo reruns it)", flush=True)
            continue
        seconds, source = estimate.estimate_s(run, prior)
        left = deadline - time.perf_counter()
        if seconds > left:
            not_run[run.key] = f"estimate {seconds:.0f} s > {left:.0f} s left of --budget-s"
            print(f"  {run.key}: skipped, {not_run[run.key]}", flush=True)
            continue
        print(f"  {run.key}: running (estimate {seconds:.0f} s, {source})", flush=True)
        record = runner.execute(run, ctx, left, (seconds, source))
        records[run.key] = record
        ran.append(run)
        written += [ctx.record_path(run), ctx.records_dir(run)]
        print(f"  {run.key}: {record['status']} in {record['wall_s']:.1f} s"
              + (f" ({record['reason']})" if record["reason"] else "")
              + ("" if record["met"] is None else f", target {'met' if record['met'] else 'MISSED'}"),
              flush=True)
        save()
    save()
    print(f"acceptance: wrote {summary_path}" + (f" and {args.archive}" if args.archive else "")
          + f" in {time.perf_counter() - started:.0f} s")
    not_ok = [run for run in ran if records[run.key]["status"] != "ok"]
    if not_ok:  # the others ran on; the caller learns it from the exit code and this line
        raise JaxninError(not_ok_line(not_ok, len(ran), records, ctx))
    return 0


def not_ok_line(not_ok, ran: int, records: dict, ctx) -> str:
    """Which of this call's runs failed or were stopped, where their records are, what to do."""
    said = "; ".join(f"{run.key} {records[run.key]['status']} ({records[run.key]['reason']})"
                     for run in not_ok[:3]) + (f"; {len(not_ok) - 3} more" if len(not_ok) > 3
                                               else "")
    return (f"{len(not_ok)} of the {ran} runs this call ran did not end ok: {said}; each one's "
            f"record is in {ctx.record_path(not_ok[0]).parent}, its output in the console.txt "
            "of its record's folder: fix the cause and rerun the same command (runs recorded "
            "ok are skipped, these run again)")


def kept_line(chosen, records: dict, folder: Path) -> str:
    """What a stopped call leaves (the finished runs' records in `folder`), and how to go on:
    the run in hand, if any, starts over."""
    done = sum(1 for run in chosen if records.get(run.key, {}).get("status") == "ok")
    return (f"{done} of the {len(chosen)} chosen runs are recorded ok in {folder}: rerun the "
            "same command to go on (recorded runs are skipped, a stopped one starts over)")


def child_env(tiny: bool, scratch: Path) -> dict:
    """The children's environment: this checkout importable without installing it, output
    unbuffered (a stopped run keeps its log); for --tiny, one shared compilation cache."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH")) if p)
    if tiny:  # CPU tests only: a GPU run keeps every wall time from a truly cold start
        env |= {"JAX_COMPILATION_CACHE_DIR": str(scratch.absolute() / "jax-cache"),
                "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
                "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0"}
    return env


def probe_device(env: dict) -> str:
    """'NVIDIA H200 (gpu)': the device the children will use, asked of a child."""
    try:
        done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                              text=True, timeout=300)
    except subprocess.TimeoutExpired:
        raise JaxninError("JAX did not list its devices within 300 s: check the GPU driver "
                          "(nvidia-smi) and the jax installation") from None
    lines = done.stdout.split("\n")
    if done.returncode != 0 or len(lines) < 2:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise JaxninError(f"JAX cannot start in a child process ({last}): check "
                          f"`{sys.executable} -c 'import jax; print(jax.devices())'`")
    return f"{lines[0]} ({lines[1]})"


def device_slug(device: str) -> str:
    """'NVIDIA H200 (gpu)' -> 'nvidia-h200'; 'cpu (cpu)' -> 'cpu'."""
    name = device.rsplit(" (", 1)[0]
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "unknown-device"


def _data_dir(given: str | None) -> str:
    chosen = given or os.environ.get("JAXNIN_DATA_DIR")
    if not chosen or not Path(chosen).is_dir():
        raise JaxninError(f"--data-dir {chosen!r} is not a folder: give the one holding "
                          "fashion_mnist/ and mnist/ with their four .gz files each "
                          "(see experiments/acceptance/README.md)")
    return str(Path(chosen).absolute())


def _header(device: str, ctx, args, argv) -> list[str]:
    from jaxnin.versions import git_commit

    return [f"# Acceptance on {device}: {ctx.kind}, as of {ctx.date}", "",
            f"- last command: `python -m experiments.acceptance {' '.join(argv)}` "
            f"(git {git_commit(REPO, CODE) or 'unknown'})",
            "- every row is the latest record of that run on this device kind (its date "
            "beside it); wall time is the runner's, from the child's start (a cold start) to "
            "its exit; ex/s are training examples per second (all seeds), from history.json",
            "- runs not run say why: the budget (an estimate from FLOPs and the H100 reference "
            "figures, see experiments/acceptance/README.md), --parts, or not reached yet"]


def _check_archive(archive: str | None) -> None:
    """Refuse, in one line, an archive that cannot be written: one whose path is a folder or
    lies under a file, or whose folder cannot be made or written in (the archive is written
    beside itself, then renamed onto its path)."""
    if not archive:
        return
    why = _archive_problem(archive)
    if why:
        raise JaxninError(f"--archive {archive} cannot be written ({why}): choose the path of "
                          "a .tar.gz file in a folder you can write in")


def _archive_problem(archive: str) -> str | None:
    path = Path(archive).absolute()
    if archive.endswith(("/", os.sep)) or path.is_dir():
        return (f"{path} is a folder, not a file; name a file in it, e.g. "
                f"{path / 'acceptance.tar.gz'}")
    for candidate in path.parents:
        if candidate.is_dir():
            break
        if os.path.lexists(candidate):  # a file, or a link that leads nowhere
            return (f"{candidate} is {'a file' if candidate.is_file() else 'a broken link'}, "
                    "not a folder")
    folder = path.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".{path.name}.probe-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        return err.strerror or str(err)
    return None


def _parser() -> argparse.ArgumentParser:
    return command_parser("python -m experiments.acceptance", __doc__, AcceptanceOptions())
