"""The lever x seed table of `--seeds K` runs, in Markdown.

    python -m jaxnin.report.seed_table [--reach 0.90] NAME=RUN_DIR [NAME=RUN_DIR ...]

A RUN_DIR without NAME= is named by itself, as typed. Two runs of one name are refused, naming
both folders: a table with one of them silently left out would look complete.

Each cell is a seed's best test accuracy over its epochs (run.json's results), with its dead
classes in the last epoch when there are any (history.json); the last columns are the mean ±
std over seeds (ddof 0, as the runs print it), the minimum, and how many seeds reach --reach.
"""
import argparse
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np

from jaxnin.cli import ArgumentParser, add_flags, options_from
from jaxnin.errors import JaxninError
from jaxnin.options import Range, option


@dataclasses.dataclass(frozen=True)
class SeedTableOptions:
    """The table's options, beside its NAME=RUN_DIR arguments."""
    reach: float = option(0.90, "the accuracy whose reaching seeds are counted",
                          within=Range(0, 1))


def named_runs(specs: list[str]) -> dict[str, Path]:
    """{row name: folder} of NAME=RUN_DIR (or RUN_DIR) arguments, in their order; a name
    given twice raises a JaxninError naming both folders."""
    runs: dict[str, Path] = {}
    for spec in specs:
        name, _, folder = spec.rpartition("=")
        if not folder:
            raise JaxninError(f"{spec!r} names no run folder: give NAME=RUN_DIR or RUN_DIR")
        name = name or folder
        if name in runs:
            raise JaxninError(f"two runs are named {name!r}: {runs[name]} and {folder}; give "
                              "each its own NAME=RUN_DIR")
        runs[name] = Path(folder)
    return runs


def read_run(folder: Path) -> dict:
    """{"seeds", "best", "dead"} of a finished --seeds run's folder; a JaxninError saying what
    is missing or damaged, and what to do, for any other folder."""
    def refused(what: str):
        return JaxninError(f"{folder} holds no finished run: {what}")

    record = _json_of(folder / "run.json", refused)
    if not isinstance(record, dict):
        raise refused(f"{folder / 'run.json'} is not a jaxnin run record; give a run's workdir")
    results = record.get("results")
    if results is None:
        raise refused("its run.json has no results yet, which are written when its last epoch "
                      "ends: finish it by running its command again with --resume")
    history = _json_of(folder / "history.json", refused)
    if not isinstance(history, list) or not history or not isinstance(history[-1], dict):
        raise refused(f"{folder / 'history.json'} records no epoch")
    try:
        seeds, best = results["seeds"], results["best_test_acc_per_seed"]
    except (KeyError, TypeError):
        raise refused(f"the results in {folder / 'run.json'} lack each seed's best accuracy "
                      "(written by an older jaxnin?)") from None
    last = history[-1]
    dead = last.get("per_seed", {}).get("dead_classes", [last.get("dead_classes", 0)])
    return {"seeds": seeds, "best": best, "dead": dead}


def _json_of(path: Path, refused):
    try:
        return json.loads(path.read_text())
    except OSError as err:
        raise refused(f"{path} cannot be read ({err.strerror or err})") from None
    except ValueError as err:  # not UTF-8, or not JSON
        raise refused(f"{path} is damaged ({err})") from None


def row(name: str, run: dict, reach: float) -> list[str]:
    best = np.asarray(run["best"])
    cells = [f"{b:.3f}" + (f" ({d} dead)" if d else "") for b, d in zip(best, run["dead"])]
    return [name, *cells, f"{best.mean():.3f} ± {best.std():.3f}", f"{best.min():.3f}",
            f"{int((best >= reach).sum())}/{best.size}"]


def table(runs: dict[str, dict], reach: float) -> str:
    seeds = {tuple(run["seeds"]) for run in runs.values()}
    if len(seeds) != 1:
        raise JaxninError(f"the runs trained different seeds ({sorted(seeds)}): a lever table "
                          "compares the same seeds")
    header = ["lever", *(f"seed {s}" for s in seeds.pop()), "mean ± std", "min",
              f"≥ {reach:.2f}"]
    lines = [header, ["---"] * len(header), *(row(n, r, reach) for n, r in runs.items())]
    return "\n".join("| " + " | ".join(line) + " |" for line in lines)


def main(argv) -> int:
    parser = ArgumentParser(prog="python -m jaxnin.report.seed_table", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="NAME=RUN_DIR")
    add_flags(parser, SeedTableOptions())
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    options = options_from(SeedTableOptions, args)
    runs = {name: read_run(folder) for name, folder in named_runs(args.runs).items()}
    print(table(runs, options.reach))
    return 0


if __name__ == "__main__":
    from jaxnin.cli import run_main
    sys.exit(run_main(main))
