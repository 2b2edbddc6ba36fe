"""Each run's GPU time, estimated before it starts: FLOPs over the reference rates, plus
fixed costs; or, where this device kind already recorded the run, its measured wall time.

The rates come from the reference figures, measured on one H100 (2026-11-23) with a plain Flax
scan-epoch loop: NiN trained at 18k ex/s fp32 and 28k bf16, VGG-11 at 3.2k and 6.0k, both at
224x224 and batch 128; the main job took about 3.3 s an epoch and 36 s a run with compile.
A training example costs 3 x the forward FLOPs of jaxnin.report.summary (as the bench counts).
Everything else here is an assumption, named as one, and erring long: an estimate decides
what to start, so a long one only costs an unused minute, a short one a killed run.
"""
import functools

from experiments.acceptance.plan import DATA_DIR, Run
from experiments.bench import cli as bench
from jaxnin.models import create_model
from jaxnin.report.summary import summarize
from jaxnin.train.config import TrainConfig

REFERENCE_EX_S = {"float32": {"nin": 18_000, "vgg11": 3_200},
                  "bfloat16": {"nin": 28_000, "vgg11": 6_000}}
REFERENCE_INPUT = (224, 224, 1)
# Assumptions: a process's start (Python and JAX imports, CUDA start, data load, compiles);
# each epoch's evaluation dispatch, checkpoint and history writes; the least time a step
# takes however small its model; and a margin over the whole.
START_S, EPOCH_S, STEP_S, MARGIN = 15.0, 0.5, 1e-4, 1.25
# Assumptions for the bench: a measuring child's start, torch.compile, the seeds' CPU pipeline,
# PyTorch's time to accuracy as a multiple of jaxnin's, and an ONNX export with its check.
CHILD_S, TORCH_COMPILE_S, SEED_PIPELINE_EX_S, TORCH_TTA_FACTOR, EXPORT_S = 15.0, 60.0, 2_000, 2.0, 30.0
SPLITS = {"fashion_mnist": (60_000, 10_000), "mnist": (60_000, 10_000),
          "video": (320, 80)}  # the sample clips: 8 classes x 50, 20 % held out
CLASSES = {"fashion_mnist": 10, "mnist": 10, "video": 8}


def estimate_s(run: Run, prior: dict | None = None) -> tuple[float, str]:
    """(seconds, how they were found) for `run`; `prior` is its earlier record, if any."""
    if prior and prior.get("status") == "ok" and prior.get("wall_s"):
        return prior["wall_s"] * 1.1, f"measured earlier on this device kind ({prior['date']}) + 10 %"
    seconds = sum(_command_s(command, run) for command in run.commands)
    return seconds * MARGIN, "FLOPs and the H100 reference rates (estimate)"


def _command_s(command: tuple[str, ...], run: Run) -> float:
    module, flags = command[0], list(command[1:])
    if module == "jaxnin.export_onnx":
        return EXPORT_S
    if module == "experiments.bench":
        return bench_s(flags)
    if module == "jaxnin.experiments.nin_ablation":
        return ablation_s(run)
    config = run.train_config()  # the recipe's with the run's overrides, checked
    config.validate()
    return train_s(config)


def train_s(config: TrainConfig) -> float:
    """One training run from a cold start: start, then per epoch its FLOPs and fixed costs."""
    num_train, num_test = SPLITS[config.dataset]
    num_train, num_test = min(num_train, config.limit_train or num_train), min(
        num_test, config.limit_test or num_test)
    flops = forward_flops(config)
    steps = num_train // config.batch_size
    compute = config.seeds * (3 * num_train + num_test) * flops / rate(config.dtype, config.model)
    return START_S + config.epochs * (compute + steps * STEP_S + EPOCH_S)


def forward_flops(config: TrainConfig) -> int:
    channels = config.data_options.get("frames", 1)
    size = config.resize or 28
    return _flops(config.model, (size, size, channels), CLASSES[config.dataset],
                  tuple(sorted(config.model_options.items())))


@functools.lru_cache(maxsize=None)
def _flops(model: str, shape: tuple, classes: int, options: tuple) -> int:
    return summarize(create_model(model, num_classes=classes, **dict(options)), shape).total_flops


@functools.lru_cache(maxsize=None)
def rate(dtype: str, model: str | None = None) -> float:
    """Training FLOP/s of `model` in `dtype` from its reference figure; for a model without
    one, that of the slower reference model (the conservative choice)."""
    rates = {name: ex_s * 3 * _flops(name, REFERENCE_INPUT, 10, ())
             for name, ex_s in REFERENCE_EX_S[dtype].items()}
    return rates.get(model) or min(rates.values())


def bench_s(flags: list[str]) -> float:
    """`python -m experiments.bench FLAGS`: a probe child, the throughput children, the TTA runs."""
    settings = bench.Settings.from_args(bench.parser().parse_args(
        [f.replace(DATA_DIR, "data") for f in flags]))
    seconds = CHILD_S
    if not settings.tta_only:
        for job in bench.throughput_jobs(settings):
            seconds += CHILD_S + _job_s(job, settings)
    if not settings.skip_tta:
        for config in settings.tta_configs.values():
            jaxnin_s = train_s(config)
            torch_s = min(settings.tta_timeout, TORCH_TTA_FACTOR * jaxnin_s) \
                if settings.torch_variants else 0.0
            seconds += min(settings.tta_timeout, jaxnin_s) + torch_s
    return seconds


def _job_s(job: dict, settings) -> float:
    examples = (1 + job["repeats"]) * job["steps"] * job["batch_size"]  # warm-up + timed
    config = TrainConfig.from_json(job["config"])
    flops = 3 * forward_flops(config) * examples
    if job["side"] == "jaxnin":
        return flops / rate(job["dtype"], job["model"])
    if job["variant"] == "seed_pipeline":
        return examples / SEED_PIPELINE_EX_S
    if job["variant"] == "tuned":
        return (TORCH_COMPILE_S if settings.compile else 0.0) + flops / rate("bfloat16", job["model"])
    return flops / rate("float32", job["model"])


def ablation_s(run: Run) -> float:
    """nin_ablation: the variant's public recipe (nin_ablation.<key>) with the run's seeds and
    cut, as the plan states it (vmapped seeds: as K runs' work), plus its costs' compile."""
    return train_s(run.train_config()) + CHILD_S


def table(runs: list[Run]) -> str:
    """Markdown: each run's estimate and the running total, in plan order."""
    lines = ["| part | run | estimate | cumulative |", "|---|---|---|---|"]
    total = 0.0
    for run in runs:
        seconds, _ = estimate_s(run)
        total += seconds
        lines.append(f"| {run.part} | `{run.key}`: {run.label} | {seconds:.0f} s | "
                     f"{total / 60:.1f} min |")
    return "\n".join(lines)
