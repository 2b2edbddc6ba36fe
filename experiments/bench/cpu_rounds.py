"""Medians over interleaved rounds of the CPU table, each round a folder of three bench runs.

    python -m experiments.bench.cpu_rounds DIR

DIR/round*/ each hold `recipes/` (`--cpu-compare`: the recipes as they are, against PyTorch's
loop), `ynnpack/` and `eigen/` (`--cpu-compare --no-torch --set cpu_convolutions=...`) and
`vgg.jsonl` (experiments.bench.cpu_convolutions' lines). Ratios are taken within a round, then
the median over rounds; prints one JSON object.
"""
import argparse
import dataclasses
import json
import statistics
import sys
from pathlib import Path

from jaxnin.cli import command_parser, options_from, path_arg, run_main
from jaxnin.errors import JaxninError
from jaxnin.options import option

RUNS = ("recipes", "ynnpack", "eigen")
RATIOS = {  # name -> (numerator, denominator): examples/s, or ms a step for VGG (inverted)
    "nin recipe (eigen) / torch loop": ("recipes:jaxnin:nin", "recipes:torch:nin"),
    "nin ynnpack / torch loop": ("ynnpack:jaxnin:nin", "recipes:torch:nin"),
    "nin eigen / ynnpack": ("recipes:jaxnin:nin", "ynnpack:jaxnin:nin"),
    "lenet recipe (ynnpack) / torch loop": ("recipes:jaxnin:lenet", "recipes:torch:lenet"),
    "lenet eigen / torch loop": ("eigen:jaxnin:lenet", "recipes:torch:lenet"),
    "lenet eigen / ynnpack (same run kind)": ("eigen:jaxnin:lenet", "ynnpack:jaxnin:lenet"),
    "vgg11@64 b16 step: ynnpack ms / eigen ms": ("vgg:ynnpack", "vgg:eigen"),
}


def read_round(folder: Path) -> dict:
    """{"recipes:jaxnin:nin": examples/s, ..., "vgg:eigen": ms a step} of one round."""
    values = {}
    for run in RUNS:
        for path in (folder / run).glob("results-*.json"):
            for row in json.loads(path.read_text())["throughput"]:
                if row.get("status") == "ok":
                    values[f"{run}:{row['side']}:{row['model']}"] = row["examples_per_s"]
    vgg = folder / "vgg.jsonl"
    for line in (vgg.read_text().splitlines() if vgg.exists() else ()):
        record = json.loads(line)
        if "ms_per_step" in record:
            values[f"vgg:{record['cpu_convolutions']}"] = record["ms_per_step"]
    return values


def summary(folder: Path) -> dict:
    rounds = {path.name: read_round(path) for path in sorted(folder.glob("round*"))
              if path.is_dir()}
    ratios = {}
    for name, (top, bottom) in RATIOS.items():
        each = [r[top] / r[bottom] for r in rounds.values() if top in r and bottom in r]
        ratios[name] = {"median": statistics.median(each) if each else None,
                        "rounds": [round(x, 3) for x in each]}
    return {"rounds": {k: {key: round(v, 1) for key, v in r.items()} for k, r in rounds.items()},
            "ratios": ratios}


@dataclasses.dataclass(frozen=True)
class RoundsOptions:
    """The command line: DIR only; a number added here gets its flag and range from add_flags."""
    folder: str = option(None, "the folder that holds round*/", flag=False)


def parser() -> argparse.ArgumentParser:
    p = command_parser("python -m experiments.bench.cpu_rounds", __doc__, RoundsOptions())
    p.add_argument("dir", type=path_arg,
                   help="the folder that holds round*/ (each with recipes/, ynnpack/, "
                   "eigen/ and vgg.jsonl)")
    return p


def main(argv) -> int:
    args = parser().parse_args(argv)
    options = options_from(RoundsOptions, args, folder=args.dir)
    if not Path(options.folder).is_dir():
        raise JaxninError(f"{options.folder} is not a folder: give the one that holds the "
                          "round*/ folders")
    run(options)
    return 0


def run(options: RoundsOptions) -> None:
    """The work (main calls it once the folder is checked): the summary, as JSON."""
    print(json.dumps(summary(Path(options.folder)), indent=1))


if __name__ == "__main__":
    sys.exit(run_main(main))
