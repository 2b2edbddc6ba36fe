"""`python -m experiments.bench`: jaxnin against PyTorch on one device, in one run.

    python -m experiments.bench [--models nin,vgg11,lenet] [--batch-sizes 128,512]
                                [--steps N] [--tiny | --cpu-compare] [--no-torch]
                                [--skip-tta | --tta-only] [--precisions strict,tf32] [--out DIR]
                                [--set FIELD=VALUE ...]

Every run trains a recipe's config (jaxnin.recipes: fashion_nin for NiN, fashion_vgg for VGG-11,
mnist_lenet for LeNet-5), --tiny's sizes and then each `--set FIELD=VALUE` applied to it: any
TrainConfig field (experiments.bench.overrides), e.g. `--set epochs=2 --set data_dir=/data`.

Run it from the root of a jaxnin checkout (it is a tool of the repository, not part of the
installed package).

For each model and batch size it times jaxnin's training epoch (fp32 under each precision
policy, and bf16) and four PyTorch references (the seeds' CPU pipeline, fp32 with the data on
the device under each policy, tuned: torch.compile + bf16 autocast + channels_last, and the
plain eager loop a student writes on a CPU), each in its own child process; then it trains
seed 001's NiN and seed 002's LeNet from a cold start on the real data, on both sides, and
times how long each takes to reach its accuracy. Results go to
`<out>/results-<device>-<date>.json` and `.md`, rewritten after every measurement.
"""
import argparse
import contextlib
import dataclasses
import json
import platform
import shlex
import sys
import tempfile
import time
from pathlib import Path

import jaxnin
from experiments.bench import overrides, policy, report, tta
from experiments.bench.jaxnin_side import TRAIN_FLOPS_NOTE
from experiments.bench.worker import REPO, run_in_child, run_job
from jaxnin import guard
from jaxnin.cli import command_parser, options_from
from jaxnin.data.vision import load_dataset
from jaxnin.errors import JaxninError
from jaxnin.options import COUNT, POSITIVE, Range, option
from jaxnin.recipes import recipe
from jaxnin.train.config import TrainConfig
from jaxnin.versions import git_commit

# model -> the recipe (jaxnin.recipes) its throughput runs train: every field of that config
# (optimizer, schedule, warm-up, clipping, model options, ...) reaches the jaxnin side through
# the library's own factories; `--set FIELD=VALUE` changes any of them (experiments.bench.overrides).
RECIPES = {"nin": "fashion_nin", "vgg11": "fashion_vgg", "lenet": "mnist_lenet"}
# The measured table: NiN at 128 and 512, VGG-11 at 128, LeNet at 256.
BATCH_SIZES = {"nin": (128, 512), "vgg11": (128,), "lenet": (256,)}
STEPS = {"nin": 50, "vgg11": 50, "lenet": 200}  # about 1 s an epoch for jaxnin on an H100
# --tiny: CPU-sized, as config overrides. NiN's smallest input is 67; VGG at 32 with an eighth
# of the channels.
TINY = {"nin": {"batch_size": 8, "resize": 67},
        "vgg11": {"batch_size": 8, "resize": 32,
                  "model_options": {"width_divisor": 8, "hidden": 256}},
        "lenet": {"batch_size": 16}}
TINY_STEPS, TINY_REPEATS = 2, 2
# --cpu-compare: the CPU table. Seed 002's LeNet epoch (60,000 / 16 = 3,750 steps) and
# NiN at 67x67, batch 128, on 4,096 examples; jaxnin fp32 against the student's PyTorch loop.
CPU_COMPARE = {"lenet": {"steps": 3750, "config": {"batch_size": 16}},
               "nin": {"steps": 32, "config": {"batch_size": 128, "resize": 67}}}
# Time to accuracy: bench name -> (recipe, target test accuracy or None for "the whole recipe").
TTA_RECIPES = {"nin": ("fashion_nin", 0.885), "lenet": ("mnist_lenet", None)}
TINY_TTA = {"epochs": 1, "limit_train": 256, "limit_test": 100}
TORCH_VARIANTS = ("seed_pipeline", "fp32", "tuned", "cpu")
DTYPES = ("float32", "bfloat16")
TORCH_MISSING_FLAG = "torch side not run (--no-torch)"
# The code a result depends on, relative to the checkout: the git commit recorded with it is
# marked where these differ from it (the bench's own records beside its code are not code).
CODE = ("jaxnin", "experiments/bench/*.py", "pyproject.toml")


def main(argv) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_args(args)
    if not settings.in_process:
        # The children measure; were this process to touch the GPU, JAX would reserve most of
        # its memory here, for the whole run, and PyTorch's children would run out of it.
        import jax
        jax.config.update("jax_platforms", "cpu")
    results = new_results(argv, settings)
    jobs = [] if settings.tta_only else throughput_jobs(settings)
    ttas = [] if settings.skip_tta else [(name, side) for name in settings.tta_recipes
                                         for side in ("jaxnin", "torch")]
    # What is still to measure: the files written before the end say so (partial results).
    results["pending"] = [report.label(job) for job in jobs] + [
        report.label({"recipe": name, "side": side}) for name, side in ttas]
    paths = [None, None]

    def save():
        if paths[0] is None:
            paths[:] = report.output_paths(settings.out, results["device"].get("kind", ""),
                                           results["date"], settings.file_suffix)
        results["complete"] = not results["pending"]
        results["ratios"] = report.ratios(results["throughput"])
        results["targets"] = report.targets(results)
        report.write(results, *paths)

    probe(results, settings)
    save()
    guard.keeping(lambda: kept_line(results, paths))
    try:
        for job in jobs:
            measure(job, results, settings)
            results["pending"].pop(0)
            save()
        for name, side in ttas:
            results["tta"].append(time_to_accuracy(name, side, results, settings))
            results["pending"].pop(0)
            save()
    except BaseException as err:  # noqa: BLE001 -- marked on disk, then raised as it was
        interrupted = isinstance(err, KeyboardInterrupt) or guard.signalled()
        why = "interrupted (Ctrl-C or SIGTERM)" if interrupted else "stopped by an error"
        results["stopped"] = f"{why} at {time.strftime('%Y-%m-%dT%H:%M:%S%z')}"
        with contextlib.suppress(Exception):  # the error in hand is the one to say
            save()
        raise
    print(f"wrote {paths[0]} and {paths[1]}")
    return 0


def kept_line(results: dict, paths: list) -> str:
    """What a stopped bench leaves (see guard.keeping): the measurements made so far, in files
    that say they are partial and list the ones not made."""
    if not results["pending"]:
        return f"the results are complete in {paths[0]} and {paths[1]}"
    return (f"the measurements made so far are saved in {paths[0]} and {paths[1]}, marked "
            f"partial, with the {len(results['pending'])} not made listed: rerun the same "
            "command to make them all (it starts over, replacing those files)")


@dataclasses.dataclass(frozen=True)
class Settings:
    """What to measure, from the flags: the bench's own choices, and each run's config (its
    recipe's, with --tiny's sizes and every --set override applied)."""
    models: tuple[str, ...]
    dtypes: tuple[str, ...]
    precisions: tuple[str, ...]
    batch_sizes: dict
    steps: dict
    repeats: int
    torch_variants: tuple[str, ...]
    compile: bool
    compile_mode: str
    num_workers: int
    in_process: bool
    job_timeout: float
    tta_recipes: tuple[str, ...]
    tta_only: bool
    skip_tta: bool
    tta_precision: str
    tta_timeout: float
    out: Path
    tiny: bool
    cpu_compare: bool
    peak_tflops: float | None
    profile: bool
    overrides: dict  # --set: TrainConfig fields, applied to every run below
    configs: dict  # model -> the TrainConfig its throughput jobs train (batch size: per job)
    tta_configs: dict  # TTA_RECIPES key -> the TrainConfig both sides train

    @classmethod
    def from_args(cls, args) -> "Settings":
        """The settings of parsed flags (or of a BenchOptions)."""
        args = args if isinstance(args, BenchOptions) else BenchOptions.from_args(args)
        if args.cpu_compare:
            return cls.cpu_compared(args)
        models = _choices(args.models, RECIPES, "--models")
        tiny = args.tiny
        sets = overrides.parse(args.set)
        configs = {m: overrides.apply(overrides.apply(recipe(RECIPES[m]), TINY[m] if tiny else {}),
                                      sets) for m in models}
        if args.batch_sizes:
            sizes = tuple(_positive_ints(args.batch_sizes, "--batch-sizes"))
            batch_sizes = {m: sizes for m in models}
        elif tiny or "batch_size" in sets:
            batch_sizes = {m: (configs[m].batch_size,) for m in models}
        else:
            batch_sizes = {m: BATCH_SIZES[m] for m in models}
        steps = {m: _or(args.steps, TINY_STEPS if tiny else STEPS[m]) for m in models}
        variants = () if args.no_torch else tuple(_choices(args.torch_variants, TORCH_VARIANTS,
                                                           "--torch-variants"))
        if args.skip_tta and args.tta_only:
            raise JaxninError("--skip-tta and --tta-only exclude each other: drop one")
        dtypes = args.dtypes or (sets["dtype"] if "dtype" in sets else ",".join(DTYPES))
        tta_recipes = tuple(_choices(args.tta_recipes, TTA_RECIPES, "--tta-recipes"))
        tta_configs = {} if args.skip_tta else {name: _tta_config(name, sets, tiny)
                                                for name in tta_recipes}
        return cls(models=models, dtypes=_choices(dtypes, DTYPES, "--dtypes"),
                   precisions=_choices(args.precisions, policy.PRECISIONS, "--precisions"),
                   batch_sizes=batch_sizes, steps=steps,
                   repeats=_or(args.repeats, TINY_REPEATS if tiny else 3),
                   torch_variants=variants, compile=not (args.no_compile or tiny),
                   compile_mode=args.compile_mode, num_workers=args.num_workers,
                   in_process=args.in_process, job_timeout=args.job_timeout,
                   tta_recipes=tta_recipes, tta_only=args.tta_only, skip_tta=args.skip_tta,
                   tta_precision=args.tta_precision, tta_timeout=args.tta_timeout,
                   out=Path(args.out), tiny=tiny, cpu_compare=False,
                   peak_tflops=args.peak_tflops, profile=args.profile, overrides=sets,
                   configs=configs, tta_configs=tta_configs)

    @classmethod
    def cpu_compared(cls, args) -> "Settings":
        """--cpu-compare: CPU_COMPARE's sizes, jaxnin fp32 strict against the student loop."""
        if args.tiny:
            raise JaxninError("--cpu-compare and --tiny exclude each other: drop one")
        plain = cls.from_args(dataclasses.replace(
            args, cpu_compare=False, models=",".join(CPU_COMPARE), batch_sizes=None,
            steps=None, dtypes="float32", precisions="strict",
            torch_variants="cpu", skip_tta=True, tta_only=False, repeats=_or(args.repeats, 2)))
        configs = {m: overrides.apply(overrides.apply(recipe(RECIPES[m]), c["config"]),
                                      plain.overrides) for m, c in CPU_COMPARE.items()}
        return dataclasses.replace(
            plain, cpu_compare=True, configs=configs,
            batch_sizes={m: (configs[m].batch_size,) for m in CPU_COMPARE},
            steps={m: c["steps"] for m, c in CPU_COMPARE.items()})

    @property
    def file_suffix(self) -> str:
        return ("-tiny" if self.tiny else "-cpu-compare" if self.cpu_compare else "") + (
            "-throughput" if self.skip_tta else "-tta" if self.tta_only else "")


def new_results(argv, settings: Settings) -> dict:
    notes = [f"MFU = training FLOP/s / the device's dense bf16 peak, for fp32 rows too; "
             f"{TRAIN_FLOPS_NOTE}",
             "ex/s: median over timed epochs after a compiling warm-up epoch; random uint8 "
             "28x28x1 data, resized on the device (torch seed pipeline: PIL on the CPU)",
             "fp32 rows run under one precision policy on both sides: strict (float32 "
             "matmuls and convolutions) and tf32, each its own row; bf16 rows keep params, "
             "loss and optimizer state in float32 on both sides; the seed pipeline keeps "
             "PyTorch's defaults, as the seeds ran (each row's policy: its `policy`)",
             "every measurement runs in its own child process" if not settings.in_process
             else "--in-process: jaxnin's measurements in this process (peak memory "
                  "accumulates), PyTorch's in child processes"]
    if not settings.torch_variants:
        notes.append(TORCH_MISSING_FLAG)
    elif not settings.compile:
        notes.append("torch tuned ran without torch.compile (--no-compile or --tiny)")
    if settings.tiny:
        notes.append("--tiny: CPU-sized models, batches and steps; a check that the bench "
                     "runs, not a speed claim")
    return {"schema": 1, "command": "python -m experiments.bench " + shlex.join(argv),
            "date": time.strftime("%Y-%m-%d"), "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "git_commit": git_commit(REPO, CODE), "host_python": platform.python_version(),
            "settings": _settings_record(settings), "device": {}, "versions": {},
            "notes": notes, "throughput": [], "ratios": [], "tta": [], "targets": [],
            # Until the last measurement: `complete` false, the ones not made in `pending`,
            # and `stopped` says why where a signal or an error ended the bench first.
            "complete": False, "pending": [], "stopped": None}


def probe(results: dict, settings: Settings) -> None:
    """The device, its peak and the JAX-side versions, from a child (or this process)."""
    job = {"side": "jaxnin", "kind": "probe", "peak_tflops": settings.peak_tflops,
           "matmul_iterations": 20}
    result = _run(job, settings)
    if result["status"] != "ok":
        results["notes"].append(f"device probe {result['status']}: {result.get('reason')}")
        return
    device = result["device"]
    results["versions"] |= {"jaxnin": jaxnin.__version__, **device.pop("versions")}
    results["device"] = {**device, "matmul_bf16_flops": result["matmul_bf16"]["flops_per_s"]}
    print(f"device: {device['kind']} ({device['platform']}); bf16 peak "
          f"{report._tflops(device['bf16_peak_flops'])}, measured matmul "
          f"{report._tflops(results['device']['matmul_bf16_flops'])}", flush=True)


def throughput_jobs(settings: Settings) -> list[dict]:
    """One job per (model, batch, jaxnin dtype or torch variant, fp32 precision policy); the
    seed pipeline runs at each model's first batch size only (it is bound by the CPU, not the
    batch), under PyTorch's defaults as the seeds did; the cpu loop under strict only (a CPU
    has no TF32)."""
    jobs = []
    for model in settings.models:
        for index, batch_size in enumerate(settings.batch_sizes[model]):
            config = settings.configs[model].replace(batch_size=batch_size)
            base = {"kind": "throughput", "steps": settings.steps[model],
                    "repeats": settings.repeats}
            ours = {**base, "side": "jaxnin", "peak_tflops": settings.peak_tflops}
            jobs += [_with_policy({**ours, **_job_config(config.replace(dtype=dtype)),
                                   "precision": precision,
                                   "profile_dir": _profile_dir(settings, model, batch_size, dtype,
                                                               precision)})
                     for dtype in settings.dtypes
                     for precision in _precisions(dtype, settings)]
            theirs = {**base, **_job_config(config), "side": "torch",
                      "compile": settings.compile, "compile_mode": settings.compile_mode,
                      "num_workers": settings.num_workers,
                      "warmup_steps": max(1, min(10, settings.steps[model]))}
            theirs.pop("dtype")  # a torch row's precision is its variant's
            jobs += [_with_policy({**theirs, "variant": variant, "precision": precision})
                     for variant in settings.torch_variants
                     if variant != "seed_pipeline" or index == 0
                     for precision in _precisions(variant, settings)]
    return jobs


def _job_config(config: TrainConfig) -> dict:
    """A job's run config, whole (`config`: both sides train from it), and the few of its
    values that label the job's row (read from it, never set apart from it)."""
    return {"config": config.to_json(), "model": config.model,
            "model_options": dict(config.model_options), "batch_size": config.batch_size,
            "resize": config.resize, "optimizer": config.optimizer, "dtype": config.dtype}


def _precisions(kind: str, settings: Settings) -> tuple:
    """The fp32 policies a row kind runs under: each asked one for fp32, none otherwise."""
    if kind in ("float32", "fp32"):
        return settings.precisions
    return ("strict",) if kind == "cpu" else (None,)


def _with_policy(job: dict) -> dict:
    kind = job.get("dtype") or job["variant"]
    return {**job, "policy": policy.row_policy(job["side"], kind, job["precision"])}


def _profile_dir(settings: Settings, model, batch_size, dtype, precision) -> str | None:
    if not settings.profile:
        return None
    name = f"{model}-b{batch_size}-{dtype}" + (f"-{precision}" if precision else "")
    return str(settings.out / "profiles" / name)


def measure(job: dict, results: dict, settings: Settings) -> None:
    """Run one throughput job (unless torch is known to be missing) and record its row."""
    missing = results.get("torch_missing")
    not_run = policy.not_run_reason(job, results["device"].get("platform"))
    if not_run:
        result = {"status": "skipped", "reason": not_run}
    elif job["side"] == "torch" and missing:
        result = {"status": "skipped", "reason": missing}
    else:
        result = _run(job, settings)
    note_torch_missing(result, results)
    if job["side"] == "torch" and "versions" in result:
        results["versions"] |= result.pop("versions")
    row = {k: job[k] for k in ("side", "model", "batch_size", "resize", "steps", "repeats")}
    row |= {"dtype": job["dtype"]} if job["side"] == "jaxnin" else {"variant": job["variant"]}
    row |= {"precision": job["precision"], "policy": job["policy"],
            "model_options": job["model_options"], "optimizer": job["optimizer"], **result,
            "settings": {**policy.declared_settings(job), **result.get("settings", {})}}
    results["throughput"].append(row)
    speed = f"{row['examples_per_s']:,.0f} ex/s" if row["status"] == "ok" else (
        f"{row['status']}: {row.get('reason')}")
    took = row.get("child_wall_s") or row.get("in_process_s") or 0.0
    print(f"{job['model']} b{job['batch_size']} @{job['resize'] or 28} {job['side']} "
          f"{report.variant(row)}: {speed} ({took:.1f} s)", flush=True)


def note_torch_missing(result: dict, results: dict) -> None:
    """Once a child finds no torch, say so once and spawn no more PyTorch children."""
    if result.pop("torch_missing", False):
        results["torch_missing"] = result["reason"]
        results["notes"].append(result["reason"])


def time_to_accuracy(recipe: str, side: str, results: dict, settings: Settings) -> dict:
    """Train `recipe` on `side` from a cold start; seconds to its target and to the end."""
    module, target = TTA_RECIPES[recipe]
    config = settings.tta_configs[recipe]
    kind = {"float32": "fp32", "bfloat16": "tuned"}[config.dtype]
    rule = policy.row_policy(side, "bfloat16" if side == "jaxnin" and kind == "tuned" else kind,
                             settings.tta_precision)
    record = {"recipe": recipe, "side": side, "target_acc": target, "module": module,
              "config": config.to_json(), "policy": rule}
    reason = _tta_unavailable(side, config, results, settings)
    if reason:
        print(f"time to accuracy, {recipe} {side}: skipped: {reason}", flush=True)
        return {**record, "status": "skipped", "reason": reason}
    logs = settings.out / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f"bench-{recipe}-{side}-") as workdir:
        workdir = Path(workdir)
        env = tta.cold_env(workdir / "caches")
        if side == "jaxnin":
            # The recipe's own command, from this very config (written as a run.json).
            base = workdir / "config" / "run.json"
            overrides.write_run_json(config, base)
            command = tta.jaxnin_command(module, workdir / "run", base)
            # The recipe's own CLI has no precision flag; JAX reads its config from the env.
            env["JAX_DEFAULT_MATMUL_PRECISION"] = rule["jax_default_matmul_precision"]
        else:
            command = tta.torch_command({"side": "torch", "kind": "tta",
                                         "workdir": str(workdir / "run"),
                                         "compile": settings.compile,
                                         "compile_mode": settings.compile_mode,
                                         "policy": rule, "config": config.to_json()})
            (workdir / "run").mkdir()
        outcome = tta.run_timed(command, workdir / "run", logs / f"tta-{recipe}-{side}.log",
                                settings.tta_timeout, env)
        run_json = workdir / "run" / "run.json"
        if run_json.is_file():
            outcome["own_process_wall_s"] = json.loads(run_json.read_text()).get(
                "results", {}).get("process_wall_s")
    note_torch_missing(outcome, results)
    compiled = side == "torch" and settings.compile
    record["settings"] = {"torch_compile": settings.compile_mode if compiled else "off",
                          "dtype": config.dtype, "batch_size": config.batch_size,
                          "data_placement": "the whole split on the device, once",
                          **policy.speed_env(env), **outcome.pop("settings", {})}
    record |= {"command": shlex.join(command[1:] if side == "jaxnin" else command[1:3]),
               **outcome, "time_to_target_s": tta.time_to_target(outcome["history"], target),
               "breakdown": tta.breakdown(outcome["history"], outcome["wall_s"])}
    accs = [r["test_acc"] for r in record["history"]]
    print(f"time to accuracy, {recipe} {side}: {record['status']}, {len(accs)} epochs, "
          f"best test acc {max(accs, default=float('nan')):.4f}, "
          f"{record['wall_s']:.1f} s", flush=True)
    return record


def _tta_unavailable(side, config: TrainConfig, results, settings) -> str | None:
    if side == "torch" and not settings.torch_variants:
        return TORCH_MISSING_FLAG
    if side == "torch" and results.get("torch_missing"):
        return results["torch_missing"]
    try:  # builds the NumPy cache once, outside every timing, so both sides read it
        load_dataset(config.dataset, config.data_dir)
    except JaxninError as err:
        return str(err)
    return None


def _run(job: dict, settings: Settings) -> dict:
    # PyTorch always gets a child: its seed pipeline forks, which JAX's threads do not survive.
    if settings.in_process and job["side"] == "jaxnin":
        start = time.perf_counter()
        return {**run_job(job), "child_wall_s": None, "in_process_s": time.perf_counter() - start}
    return run_in_child(job, settings.job_timeout)


def _settings_record(settings: Settings) -> dict:
    record = {f.name: getattr(settings, f.name) for f in dataclasses.fields(settings)
              if f.name not in ("configs", "tta_configs")}
    record["out"] = str(settings.out)
    record["configs"] = {m: c.to_json() for m, c in settings.configs.items()}
    record["tta_configs"] = {r: c.to_json() for r, c in settings.tta_configs.items()}
    # As before: each model's input size and model options, and what cut the TTA recipes.
    record["resize"] = {m: c.resize for m, c in settings.configs.items()}
    record["model_options"] = {m: dict(c.model_options) for m, c in settings.configs.items()}
    record["tta_overrides"] = {**(TINY_TTA if settings.tiny else {}), **settings.overrides}
    record["tta_dtype"] = next((c.dtype for c in settings.tta_configs.values()), None)
    record["data_dir"] = next((c.data_dir for c in settings.tta_configs.values()), None)
    record["tta_full_recipe"] = not record["tta_overrides"]
    return record


def _tta_config(name: str, sets: dict, tiny: bool) -> TrainConfig:
    """The config both sides of a time-to-accuracy run train: the recipe's, --tiny's cut
    (and input size), then every --set override."""
    config = recipe(TTA_RECIPES[name][0])
    if tiny:
        config = config.replace(**TINY_TTA, **({"resize": TINY[config.model]["resize"]}
                                              if config.resize else {}))
    return overrides.apply(config, sets)


def _or(given, default):
    """`given` where the flag was typed, else `default` (a typed 0 is refused, never this)."""
    return default if given is None else given


def _choices(text: str, valid, flag: str) -> tuple[str, ...]:
    chosen = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [c for c in chosen if c not in valid]
    if unknown or not chosen:
        raise JaxninError(f"{flag} {text!r}: choose from {', '.join(valid)} (comma-separated)")
    return chosen


def _positive_ints(text: str, flag: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",")]
    except ValueError:
        values = []
    if not values or not all(map(COUNT.contains, values)):
        raise JaxninError(f"{flag} {text!r}: give positive integers (at most {COUNT.high}), "
                          "comma-separated, e.g. 128,512")
    return values


@dataclasses.dataclass(frozen=True)
class BenchOptions:
    """The bench's command line, each option declared once (as a recipe's TrainConfig is)."""
    models: str = option("nin,vgg11,lenet", "comma-separated")
    batch_sizes: str | None = option(None, "comma-separated, for every model [nin 128,512; "
                                     "vgg11 128; lenet 256]")
    steps: int | None = option(None, "training steps per timed epoch [nin, vgg11 50; lenet 200]",
                               within=COUNT)
    repeats: int | None = option(None, "timed epochs per measurement, after one warm-up [3]",
                                 within=COUNT)
    dtypes: str | None = option(None, "jaxnin's compute dtypes, comma-separated; params "
                                "stay float32 [float32,bfloat16; with --set dtype=X: X]")
    precisions: str = option(",".join(policy.PRECISIONS), "fp32 matmul/conv policies, each run "
                             "on both sides; a CPU records tf32 rows without running them (cpu: "
                             "no tf32)")
    cpu_compare: bool = option(False, "the CPU table: LeNet b16 one epoch of 3,750 steps "
                               "and NiN@67 b128 on 4,096 examples, jaxnin fp32 strict against "
                               "the plain PyTorch CPU loop, 2 timed epochs, no time to accuracy")
    tiny: bool = option(False, "CPU-sized: small batches, NiN at 67, VGG at 32 with width/8, a "
                        "few steps, no torch.compile, 1-epoch time-to-accuracy on 256 images")
    no_torch: bool = option(False, "run the jaxnin side only")
    torch_variants: str = option(",".join(TORCH_VARIANTS), "comma-separated; cpu runs where the "
                                 "device is the CPU")
    no_compile: bool = option(False, "tuned PyTorch without torch.compile")
    compile_mode: str = option("default", "torch.compile mode for tuned")
    num_workers: int = option(4, "DataLoader workers of the seed pipeline (0: in the main "
                              "process)", within=Range(0, 1024))
    skip_tta: bool = option(False, "throughput only")
    tta_only: bool = option(False, "time to accuracy only")
    tta_recipes: str = option("nin,lenet", "comma-separated")
    tta_precision: str = option("tf32", "fp32 policy of both sides' time-to-accuracy runs "
                                "(tf32: JAX's GPU default)", choices=policy.PRECISIONS)
    tta_timeout: float = option(300.0, "seconds before a time-to-accuracy run is stopped",
                                within=POSITIVE)
    job_timeout: float = option(600.0, "seconds before a throughput child is stopped",
                                within=POSITIVE)
    peak_tflops: float | None = option(None, "bf16 peak for MFU where the device is not in the "
                                       "table (experiments.bench.peaks)", within=POSITIVE)
    profile: bool = option(False, "trace one more jaxnin epoch per measurement (jax.profiler, "
                           "into <out>/profiles/) and report the kernels that dominate it")
    in_process: bool = option(False, "measure jaxnin in this process, not one child per job (CPU "
                              "runs and tests; on a GPU, JAX would hold the memory PyTorch "
                              "needs)")
    out: str = option("experiments/bench", "output folder", path=True)
    # --set FIELD=VALUE, repeatable: any TrainConfig field, for every run (its own flag below).
    set: tuple[str, ...] = option((), "run-config overrides FIELD=VALUE", flag=False)

    @classmethod
    def from_args(cls, args) -> "BenchOptions":
        """The options of parsed flags, each checked against its declared range."""
        return options_from(cls, args, set=tuple(getattr(args, "set", None) or ()))


def parser() -> argparse.ArgumentParser:
    p = command_parser("python -m experiments.bench", __doc__, BenchOptions())
    p.add_argument("--set", action="append", metavar="FIELD=VALUE",
                   help="change a field of every run's config (jaxnin.TrainConfig: "
                   f"{', '.join(overrides.field_names())}); repeatable; VALUE is JSON or a "
                   "plain string, e.g. --set lr=0.05 --set clip_norm=1 --set data_dir=/data "
                   "--set 'model_options={\"num_1x1\": 1}'")
    return p


if __name__ == "__main__":
    from jaxnin.cli import run_main
    sys.exit(run_main(main))
