"""Seed 003's questions, answered with K seeds per setting: `python -m jaxnin.experiments.nin_ablation`.

    python -m jaxnin.experiments.nin_ablation [--data-dir DIR] [--seeds 5] [--variants a2,a1,...]
    python -m jaxnin.experiments.nin_ablation --quick      # a tiny version for the CPU,
                                                           # into runs/nin_ablation_quick/results

Each variant trains K seeds at once (--seeds, one vmapped program) on Fashion-MNIST. For each
it records test accuracy (mean ± std over seeds, final and best), examples/sec per replica,
params, forward FLOPs and the memory of one compiled training step, then writes into --out a
markdown table with the forum's own figures beside ours, curves (mean with a ± std band) and
the raw JSON. Finished variants are read back from their workdirs, so an interrupted ablation
resumes where it stopped.
"""
import dataclasses
import json
import sys
import time
from pathlib import Path

import jax

from jaxnin import guard
from jaxnin.cli import command_parser, interrupt_on_sigterm, options_from, run_main
from jaxnin.data import load_data
from jaxnin.errors import Interrupted, JaxninError
from jaxnin.recipes import RECIPES, recipe
from jaxnin.report.ablation import plot_variants, results_table
from jaxnin.report.costs import run_costs
from jaxnin.report.estimate import Workload
from jaxnin.report.logging import Console, Curves, write_json
from jaxnin.run import command_line, fit
from jaxnin.options import option
from jaxnin.train.checkpoint import newest_saved_epoch
from jaxnin.train.config import SEEDS, NamedConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class Variant(NamedConfig):
    """One setting of the ablation (the recipe nin_ablation.<name>), the question it answers
    and what the forum reported."""
    question: str = ""
    forum: str = ""

    @property
    def key(self) -> str:
        return self.name

    @property
    def label(self) -> str:
        return self.help


# What seed 003's forum asked (a-f) and reported, beside each setting's recipe.
FORUM = {
    "a2": ("a", "test 0.884 (1287 ex/s); another user: 0.8700"),
    "a1": ("a", "test 0.885 (1759.6 ex/s), 0.8 GB less memory; another user: 0.8527"),
    "b": ("b", "test 0.8856"),
    "c": ("c", "train 0.913, test 0.906"),
    "d": ("d", "test 0.901"),
    "e": ("e", "asked, not measured"),
    **{f"f{lr:g}": ("f", "d2l pitfall: lr 0.1 can stick at loss 2.303" if lr > 0.1 else "–")
       for lr in (0.02, 0.05, 0.2, 0.3)},
}
VARIANTS = tuple(
    Variant(key, RECIPES[f"nin_ablation.{key}"].purpose.removeprefix("seed 003's question: "),
            recipe(f"nin_ablation.{key}"), question=question, forum=forum)
    for key, (question, forum) in FORUM.items())

# --quick: every variant shrunk to seconds on a CPU. NiN's smallest input is 67; the
# accuracies mean nothing at this size, the run only proves the whole pipeline.
QUICK = {"resize": 67, "epochs": 2, "limit_train": 256, "limit_test": 128, "eval_batch_size": 128}
QUICK_MAX_BATCH = 64
FASHION_IMAGE_SHAPE, FASHION_CLASSES = (28, 28, 1), 10


@dataclasses.dataclass(frozen=True)
class AblationOptions:
    """The ablation's command line."""
    data_dir: str | None = option(None, "folder holding fashion_mnist/ with the four .gz files "
                                  "(default: $JAXNIN_DATA_DIR, else tfds downloads them)",
                                  path=True)
    seeds: int | None = option(None, "seeds per variant [5; 2 with --quick]", within=SEEDS)
    variants: str | None = option(None, "comma-separated subset of "
                                  + ",".join(v.key for v in VARIANTS) + " [all]")
    quick: bool = option(False, "tiny CPU version: resize 67, 256 training examples, 2 epochs, "
                         "batch <= 64")
    costs_only: bool = option(False, "train nothing: compile one step of each variant and write "
                              "costs.md (params, FLOPs, step memory)")
    workdir: str | None = option(None, "where each variant's run goes "
                                 "[runs/nin_ablation or runs/nin_ablation_quick]", path=True)
    out: str | None = option(None, "table, plots and JSON [experiments/nin_ablation; with "
                             "--quick, results/ in --workdir, so runs/nin_ablation_quick/results: "
                             "pass --out experiments/nin_ablation/quick to refresh the kept one]",
                             path=True)


def main(argv) -> int:
    args = options_from(AblationOptions, _parser().parse_args(argv))
    variants = _chosen(args.variants)
    seeds = args.seeds if args.seeds is not None else (2 if args.quick else 5)
    configs = {v.key: _config(v, seeds, args) for v in variants}
    if args.costs_only:
        return _write_costs(Path(args.out or "experiments/nin_ablation"), variants, configs)
    data = load_data("fashion_mnist", args.data_dir)
    runs_dir = Path(args.workdir or ("runs/nin_ablation" + ("_quick" if args.quick else "")))
    # --quick's numbers say nothing about the questions: by default they go beside its runs,
    # never over the tables the repository keeps (experiments/nin_ablation/quick is written
    # only when --out names it).
    out = Path(args.out or (runs_dir / "results" if args.quick else "experiments/nin_ablation"))
    print(f"nin_ablation: table, plots and JSON -> {out}", flush=True)
    interrupt_on_sigterm()
    guard.keeping(lambda: _kept(runs_dir, variants))
    rows = []
    try:
        for variant in variants:
            print(f"nin_ablation: {variant.key} ({variant.label}), {seeds} seeds -> "
                  f"{runs_dir / variant.key}", flush=True)
            run = _train(configs[variant.key], data, runs_dir / variant.key)
            costs = _costs(configs[variant.key], data, runs_dir / variant.key / "costs.json")
            rows.append(_row(variant, configs[variant.key], run, costs))
    except Interrupted:  # its advice is a single run's (`--resume`): this command's instead
        raise JaxninError(f"interrupted (Ctrl-C or SIGTERM); {guard.kept_line()}") from None
    _write(out, rows, args)
    return 0


def _kept(runs_dir: Path, variants: list[Variant]) -> str:
    """What a stopped ablation leaves, and how to go on (see guard.keeping)."""
    saved = [f"{v.key} up to epoch {epoch}" for v in variants
             if (epoch := newest_saved_epoch(runs_dir / v.key / "checkpoints")) is not None]
    if not saved:
        return "nothing was saved: rerun the same command to start again"
    return (f"saved in {runs_dir}: {', '.join(saved)}; rerun the same command to continue (each "
            "variant goes on where it stopped)")


def _chosen(keys: str | None) -> list[Variant]:
    if not keys:
        return list(VARIANTS)
    known = {v.key: v for v in VARIANTS}
    unknown = [k for k in keys.split(",") if k not in known]
    if unknown:
        raise JaxninError(f"unknown --variants {','.join(unknown)}: choose from "
                          f"{','.join(known)}")
    return [known[k] for k in keys.split(",")]


def _config(variant: Variant, seeds: int, args) -> TrainConfig:
    config = dataclasses.replace(variant.config, seeds=seeds, data_dir=args.data_dir)
    if args.quick:
        config = dataclasses.replace(config, **QUICK,
                                     batch_size=min(config.batch_size, QUICK_MAX_BATCH))
    config.validate()
    return config


def _train(config: TrainConfig, data, workdir: Path) -> dict:
    """The variant's run.json and history: read back if it finished, else (re)trained."""
    run_file = workdir / "run.json"
    record = json.loads(run_file.read_text()) if run_file.exists() else {}
    changed = TrainConfig.from_json(record["config"]).changed_keys(config) if record else []
    if changed:
        raise JaxninError(f"{workdir} holds this variant with other settings ({', '.join(changed)}"
                          "): remove it or choose another --workdir")
    if "results" not in record:
        work = Workload.of(config, len(data.test_labels[:config.limit_test]),
                           shorter="--quick, or fewer --variants or --seeds")
        console = Console(config.epochs, work=work)
        fit(config, data, workdir, resume=(workdir / "checkpoints").exists(),
            callbacks=[console, Curves(workdir.absolute(), f"{config.model} on {config.dataset}")],
            progress=console)
    return {"run": json.loads(run_file.read_text()),
            "history": json.loads((workdir / "history.json").read_text())}


def _costs(config: TrainConfig, data, path: Path) -> dict:
    """run_costs for the variant, kept beside its run: a rerun need not compile it again."""
    if path.exists():
        return json.loads(path.read_text())
    costs = run_costs(config, data.train_images.shape[1:], len(data.class_names))
    write_json(path, costs)
    return costs


def _row(variant: Variant, config: TrainConfig, run: dict, costs: dict) -> dict:
    history, results = run["history"], run["run"]["results"]
    seconds = sum(r["train_time_s"] for r in history)
    replica_examples = sum(r["train_examples"] for r in history)  # per replica
    return {"key": variant.key, "question": variant.question, "label": variant.label,
            "forum": variant.forum, "config": config.to_json(), **results,
            "examples_per_s_per_replica": replica_examples / seconds,
            "examples_per_s_all_replicas": config.seeds * replica_examples / seconds,
            "diverged_seeds_last_epoch": history[-1].get("diverged_seeds", []),
            **costs, "history": history}


def _write(out: Path, rows: list[dict], args) -> None:
    out.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    meta = {"command": command_line(), "date": time.strftime("%Y-%m-%d"),
            "device": f"{device.device_kind} ({device.platform})", "jax_version": jax.__version__,
            "quick": _quick_text() if args.quick else None}
    write_json(out / "results.json", {**meta, "variants": rows})
    (out / "table.md").write_text(results_table(rows, meta))
    plots = plot_variants(rows, out)
    print(f"nin_ablation: wrote {out / 'table.md'}, {out / 'results.json'} and "
          f"{', '.join(p.name for p in plots)}")


def _quick_text() -> str:
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in QUICK.items() if k != "eval_batch_size") + \
        f", batch <= {QUICK_MAX_BATCH}"


def _write_costs(out: Path, variants: list[Variant], configs: dict) -> int:
    """costs.md: params, FLOPs and step memory of each variant at its own batch and size."""
    out.mkdir(parents=True, exist_ok=True)
    device = jax.devices()[0]
    lines = [f"Device: {device.device_kind} ({device.platform}), jax {jax.__version__}, "
             f"{time.strftime('%Y-%m-%d')}.  ", f"Command: `{command_line()}`", "",
             "| variant | setting | batch | input | params | fwd GFLOPs | step memory | "
             "of which temporaries |", "|---|---|---|---|---|---|---|---|"]
    rows = []
    for variant in variants:
        config = configs[variant.key]
        costs = run_costs(config, FASHION_IMAGE_SHAPE, FASHION_CLASSES)
        rows.append({"key": variant.key, "config": config.to_json(), **costs})
        lines.append(f"| {variant.key} | {variant.label} | {config.batch_size} | "
                     f"{config.resize or 28} | {costs['params']:,} | "
                     f"{costs['forward_flops'] / 1e9:.3f} | {_gb(costs['step_memory_bytes'])} | "
                     f"{_gb(costs['step_temp_bytes'])} |")
    (out / "costs.md").write_text("\n".join(lines) + "\n")
    write_json(out / "costs.json", rows)
    print(f"nin_ablation: wrote {out / 'costs.md'} and {out / 'costs.json'}")
    return 0


def _gb(size: int | None) -> str:
    return "n/a" if size is None else f"{size / 1e9:.3f} GB"


def _parser():
    return command_parser("python -m jaxnin.experiments.nin_ablation", __doc__, AblationOptions())


if __name__ == "__main__":
    sys.exit(run_main(main))
