"""Process start to the first epoch, first and second run, jaxnin against PyTorch.

    python -m experiments.bench.first_epoch [--data-dir DIR] [--repeats 2] [--out FILE.md]

For the main job's quick CPU variant (the README's, one epoch of it) and seed 002's LeNet-5 (one
epoch of 3,750 steps): jaxnin's recipe command twice with one compile cache folder, empty before
the first run (that run compiles and fills it, the second reads it), and the bench's PyTorch
loop (eager, no torch.compile) as many times. The data's NumPy cache is built beforehand, so
neither side's time includes parsing the gz files. Each run is stamped from its spawn by the
bench's time-to-accuracy poller (experiments.bench.tta): "to the first epoch line" is the spawn to
the end of epoch 1, and "start-up" is that less the epoch's own training and evaluation
(interpreter, imports, data, init and, for jaxnin, compiling, which its history counts).
"""
import argparse
import dataclasses
import datetime
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

from experiments.bench import overrides, policy, tta
from jaxnin.cli import command_parser, options_from, run_main
from jaxnin.data.vision import load_dataset
from jaxnin.errors import JaxninError
from jaxnin.experiments import fashion_nin, mnist_lenet
from jaxnin.options import COUNT, option
from jaxnin.versions import usable_cores

QUICK_NIN = dataclasses.replace(fashion_nin.DEFAULTS, epochs=1, resize=67, limit_train=4096,
                                limit_test=1000, optimizer="adam", lr=0.001, batch_size=64)
RECIPES = {"nin @67, quick CPU variant": ("fashion_nin", QUICK_NIN),
           "lenet, seed 002": ("mnist_lenet", dataclasses.replace(mnist_lenet.DEFAULTS, epochs=1))}


def jaxnin_command(module, config, workdir: Path) -> list[str]:
    """The recipe's own command, training `config` (written as a run.json beside `workdir`)."""
    config_path = workdir.parent / f"{workdir.name}.config" / "run.json"
    overrides.write_run_json(config, config_path)
    return tta.jaxnin_command(module, workdir, config_path)


def torch_command(config, workdir: Path) -> list[str]:
    return tta.torch_command({"side": "torch", "kind": "tta", "workdir": str(workdir),
                              "compile": False, "compile_mode": "default",
                              "policy": policy.row_policy("torch", "fp32", "strict"),
                              **config.to_json()})


def timed(command, workdir: Path, log: Path, env: dict) -> dict:
    workdir.mkdir(parents=True)
    outcome = tta.run_timed(command, workdir, log, timeout=1200, env=env)
    if outcome["status"] != "ok" or not outcome["history"]:
        # One line with the child's own (its log goes with the scratch folder); SystemExit
        # said it without `error:` and with exit code 1.
        said = outcome.get("reason") or "it wrote no epoch to its history.json"
        raise JaxninError(f"a child, python {' '.join(command[1:3])}, did not finish its first "
                          f"epoch ({outcome['status']}): {said}")
    first = outcome["history"][0]
    # jaxnin's epoch_time_s leaves its compiles out, so they count to the start-up.
    return {"startup_s": first["done_at_s"] - first["epoch_time_s"],
            "compile_s": first.get("compile_time_s"), "to_first_epoch_line_s": first["done_at_s"],
            "epoch_s": first["epoch_time_s"], "wall_s": outcome["wall_s"]}


def measure(data_dir: str, repeats: int, scratch: Path) -> list[dict]:
    rows = []
    for name, (module, config) in RECIPES.items():
        config = dataclasses.replace(config, data_dir=data_dir)
        load_dataset(config.dataset, data_dir)  # the NumPy cache, outside every timing
        compile_cache = scratch / f"{module}-compile-cache"
        env = {**os.environ, "JAXNIN_COMPILE_CACHE": str(compile_cache)}
        for run in range(1, repeats + 1):  # interleaved, so that both see the same machine
            for side, command in (("jaxnin", jaxnin_command), ("torch", torch_command)):
                workdir = scratch / f"{module}-{side}-{run}"
                args = (module, config, workdir) if side == "jaxnin" else (config, workdir)
                result = timed(command(*args), workdir, scratch / f"{workdir.name}.log", env)
                rows.append({"recipe": name, "side": side, "run": run, **result})
                print(json.dumps(rows[-1]), flush=True)
    return rows


def markdown(rows: list[dict], argv: list[str]) -> str:
    lines = [f"`python -m experiments.bench.first_epoch {' '.join(argv)}`, "
             f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
             f"{platform.processor() or platform.machine()}, {usable_cores()} "
             "usable cores", "",
             "| recipe | side | run | start-up | of it compiling | the epoch's work "
             "| to the first epoch line |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        compiling = f"{r['compile_s']:.1f} s" if r["compile_s"] is not None else "–"
        lines.append(f"| {r['recipe']} | {r['side']} | {r['run']} | {r['startup_s']:.1f} s "
                     f"| {compiling} | {r['epoch_s']:.1f} s | {r['to_first_epoch_line_s']:.1f} s |")
    return "\n".join(lines) + "\n"


@dataclasses.dataclass(frozen=True)
class FirstEpochOptions:
    """The command line, each number with its range."""
    data_dir: str | None = option(None, "where the datasets are [$JAXNIN_DATA_DIR]", path=True)
    repeats: int = option(2, "runs of each side", within=COUNT)
    out: str | None = option(None, "write the table here too (Markdown), and its rows beside "
                             "it (.json)", path=True)


def parser() -> argparse.ArgumentParser:
    return command_parser("python -m experiments.bench.first_epoch", __doc__, FirstEpochOptions())


def main(argv) -> int:
    options = options_from(FirstEpochOptions, parser().parse_args(argv))
    run(options, argv)
    return 0


def run(options: FirstEpochOptions, argv: list[str]) -> None:
    """The measurement (main calls it once every option is checked); `argv` heads the table."""
    data_dir = options.data_dir if options.data_dir is not None else os.environ.get(
        "JAXNIN_DATA_DIR")
    with tempfile.TemporaryDirectory(prefix="first-epoch-") as scratch:
        rows = measure(data_dir, options.repeats, Path(scratch))
    table = markdown(rows, argv)
    print(table)
    if options.out:
        out = Path(options.out)
        out.write_text(table)
        out.with_suffix(".json").write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    sys.exit(run_main(main))
