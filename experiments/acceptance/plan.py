"""The acceptance runs, most important first: each a recipe's config with overrides, or a tool.

A training run is a `(recipe name, overrides)` value (jaxnin.recipes; the overrides are
TrainConfig fields, applied by experiments.bench.overrides): the runner writes that config as
a run.json and runs `python -m jaxnin.experiments.<recipe> --from {config} --workdir
{workdir} --data-dir {data_dir}`, so every field reaches the run with no flag list in between.
`{workdir}`, `{records}`, `{data_dir}` and `{config}` are filled in by the runner. `--tiny` gives
the same entries with CPU-sized overrides, with repeated runs cut to one (one main-job seed,
one bench call, one ablation variant), so that a test can run them all.
"""
import dataclasses
from typing import Any, Mapping

from experiments.bench import overrides as config_overrides
from jaxnin.experiments.nin_ablation import QUICK, QUICK_MAX_BATCH, VARIANTS
from jaxnin.recipes import recipe as recipe_config
from jaxnin.train.config import TrainConfig

PARTS = ("smoke", "accuracy", "speed", "ablation")
WORKDIR, RECORDS, DATA_DIR, CONFIG = "{workdir}", "{records}", "{data_dir}", "{config}"


@dataclasses.dataclass(frozen=True)
class Target:
    """What a run must reach: its measured `metric` at least `at_least`."""
    metric: str  # a key of the run's `measured`
    at_least: float

    def text(self) -> str:
        return f"{self.metric} >= {self.at_least:g}"


@dataclasses.dataclass(frozen=True)
class Run:
    key: str  # unique within the plan; names the record
    part: str
    label: str
    recipe: str  # folder under --out that holds the record: fashion_nin, bench, ...
    kind: str  # train | export | bench | ablation: how its results are read
    commands: tuple[tuple[str, ...], ...]  # each: module, then flags
    target: Target | None = None
    # What a training run trains: (recipe name in jaxnin.recipes, TrainConfig overrides).
    config: tuple[str, Mapping[str, Any]] | None = None

    def train_config(self) -> TrainConfig | None:
        """The run's whole config: its recipe's with its overrides (checked by TrainConfig)."""
        if self.config is None:
            return None
        name, changes = self.config
        return config_overrides.apply(recipe_config(name), changes, flag=f"run {self.key}")


# Full size: a few steps at the recipes' real input sizes, so each real program compiles.
SMOKE = {"epochs": 1, "limit_train": 1024, "limit_test": 500}
# --tiny: CPU sizes (NiN's smallest input is 67; VGG at 32 with an eighth of the channels).
TINY = {"epochs": 1, "limit_train": 256, "limit_test": 100, "eval_batch_size": 100}
# NiN with the README's quick CPU optimizer: with the seed's SGD lr 0.1 at these sizes every
# class channel dies in the first epoch, and the recipe stops there with exit code 2.
TINY_NIN = {**TINY, "resize": 67, "batch_size": 32, "optimizer": "adam", "lr": 0.001}
TINY_VGG = {**TINY, "resize": 32, "model_options": {"width_divisor": 8}, "batch_size": 32}
TINY_VIDEO = {"epochs": 1, "data_options": {"frames": 4, "size": 32}, "resize": 67,
              "batch_size": 16, "eval_batch_size": 100}
MAIN_JOB_TARGET, VGG_TARGET, LENET_TARGET = 0.885, 0.92, 0.99
# Variants of the main job measured over the same seeds as its default, so that one
# can become the documented default if the seed's recipe misses MAIN_JOB_TARGET on a seed. A
# last block without its final ReLU is the one lever that makes a dead class impossible
# (experiments/video_nin/ measures it on the CPU).
MAIN_CANDIDATES = {"linear-logits": {"model_options": {"linear_logits": True}}}
ABLATION_SEEDS = 5


def plan(tiny: bool = False) -> list[Run]:
    """Every run, in priority order: smoke, accuracy, speed, ablation."""
    return [*smoke(tiny), *accuracy(tiny), *speed(tiny), *ablation(tiny)]


def _train(key, part, label, recipe, changes, folder=None, target=None) -> Run:
    """A training run of recipe `recipe` (jaxnin.recipes) with `changes`; its record folder
    under --out is `folder` (the recipe's command by default)."""
    module = recipe.split(".")[0]
    data = () if module == "video_nin" else ("--data-dir", DATA_DIR)  # video: sample clips
    command = (f"jaxnin.experiments.{module}", "--from", CONFIG, *data, "--workdir", WORKDIR)
    return Run(key, part, label, folder or module, "train", (command,), target,
               (recipe, dict(changes)))


def _merged(*parts: Mapping[str, Any]) -> dict:
    """Overrides one after another; model_options and data_options merge."""
    merged: dict = {}
    for part in parts:
        for name, value in part.items():
            merged[name] = ({**merged.get(name, {}), **value}
                            if name in config_overrides.MERGED else value)
    return merged


def smoke(tiny: bool) -> list[Run]:
    nin, vgg = (TINY_NIN, TINY_VGG) if tiny else (SMOKE, SMOKE)
    lenet = TINY if tiny else SMOKE
    video = TINY_VIDEO if tiny else {"epochs": 1}
    runs = [_train("smoke-nin", "smoke", "fashion_nin, a few steps", "fashion_nin", nin),
            _train("smoke-vgg11", "smoke", "fashion_vgg, a few steps", "fashion_vgg", vgg),
            _train("smoke-lenet", "smoke", "mnist_lenet --tuned, a few steps", "mnist_lenet.tuned",
                   lenet),
            _train("smoke-video", "smoke", "video_nin, 1 epoch", "video_nin", video),
            *(_train(f"smoke-{name}", "smoke", f"{base_recipe} {change}", base_recipe,
                     _merged(base, change))
              # --tiny checks the runner, not the features (their own tests do): on the CPU,
              # vmapped NiN seeds compile and run slowly, so the tiny version takes LeNet.
              for base_recipe, base in [("mnist_lenet.tuned", lenet) if tiny
                                        else ("fashion_nin", nin)]
              for name, change in (("seeds2", {"seeds": 2}),
                                   ("bf16", {"dtype": "bfloat16"})))]
    export = _train("smoke-export", "smoke", "export_onnx of a fashion_nin run", "fashion_nin",
                    nin, folder="export_onnx")
    runs.append(dataclasses.replace(export, kind="export", commands=(
        *export.commands, ("jaxnin.export_onnx", WORKDIR, "--data-dir", DATA_DIR))))
    return runs


def accuracy(tiny: bool) -> list[Run]:
    seeds = (0,) if tiny else (0, 1, 2)
    nin, vgg = (TINY_NIN, TINY_VGG) if tiny else ({}, {})
    runs = [_train(f"main-seed{s}", "accuracy", f"main job (fashion_nin defaults), seed {s}",
                   "fashion_nin", _merged(nin, {"seed": s}),
                   target=Target("final_test_acc", MAIN_JOB_TARGET)) for s in seeds]
    runs.append(_train("vgg11", "accuracy", "fashion_vgg defaults (VGG-11)", "fashion_vgg",
                       vgg, target=Target("final_test_acc", VGG_TARGET)))
    runs += [_train(f"candidate-{name}-seed{s}", "accuracy",
                    f"main job with {change} (a candidate default), seed {s}", "fashion_nin",
                    _merged(nin, change, {"seed": s}),
                    target=Target("final_test_acc", MAIN_JOB_TARGET))
             for name, change in MAIN_CANDIDATES.items() for s in seeds]
    runs.append(_train("lenet-tuned", "accuracy", "mnist_lenet --tuned", "mnist_lenet.tuned",
                       TINY if tiny else {}, target=Target("final_test_acc", LENET_TARGET)))
    runs.append(_train("video", "accuracy", "video_nin defaults (224, 300 epochs), sample clips",
                       "video_nin", TINY_VIDEO if tiny else {}))
    return runs


def _bench(key, label, flags) -> Run:
    command = ("experiments.bench", *flags, "--set", f"data_dir={DATA_DIR}", "--out", RECORDS)
    return Run(key, "speed", label, "bench", "bench", (command,))


def speed(tiny: bool) -> list[Run]:
    if tiny:  # the cheapest bench call that measures (the bench's own tests cover the rest)
        return [_bench("bench-lenet", "bench --tiny, LeNet-5 fp32 throughput, jaxnin side only",
                       ("--tiny", "--no-torch", "--models", "lenet", "--dtypes", "float32",
                        "--skip-tta"))]
    return [_bench("bench-nin", "throughput, NiN b128 and b512", ("--models", "nin", "--skip-tta")),
            _bench("bench-vgg11", "throughput, VGG-11 b128", ("--models", "vgg11", "--skip-tta")),
            _bench("bench-lenet", "throughput, LeNet-5 b256", ("--models", "lenet", "--skip-tta")),
            _bench("tta-nin", "time to accuracy, NiN (both sides)",
                   ("--tta-only", "--tta-recipes", "nin")),
            # PyTorch's LeNet recipe takes about 12 minutes: the bench stops it at the timeout
            # and records the epochs it finished, labelled as such.
            _bench("tta-lenet", "time to accuracy, LeNet-5 (PyTorch side cut at 300 s)",
                   ("--tta-only", "--tta-recipes", "lenet", "--tta-timeout", "300"))]


def ablation(tiny: bool) -> list[Run]:
    variants = VARIANTS[1:2] if tiny else VARIANTS
    seeds = 1 if tiny else ABLATION_SEEDS
    flags = ("--quick", "--seeds", "1") if tiny else ("--seeds", str(ABLATION_SEEDS))
    # What each trains, for the estimate: the public recipe nin_ablation.<key>, and --quick's
    # public cut of it.
    return [Run(f"ablation-{v.key}", "ablation", f"nin_ablation {v.key}: {v.label}",
                "nin_ablation", "ablation",
                (("jaxnin.experiments.nin_ablation", "--variants", v.key, *flags,
                  "--data-dir", DATA_DIR, "--workdir", WORKDIR, "--out", RECORDS),),
                config=(f"nin_ablation.{v.key}", {"seeds": seeds, **(_quick(v.key) if tiny
                                                                     else {})}))
            for v in variants]


def _quick(key: str) -> dict:
    batch = recipe_config(f"nin_ablation.{key}").batch_size
    return {**QUICK, "batch_size": min(batch, QUICK_MAX_BATCH)}


def select(runs: list[Run], parts: str | None, keys: str | None = None) -> list[Run]:
    """The runs of the comma-separated `parts` and run `keys` (all when None), in plan order."""
    chosen_parts = _names(parts, PARTS, "--parts")
    chosen_keys = _names(keys, [r.key for r in runs], "--runs")
    return [r for r in runs if r.part in chosen_parts and r.key in chosen_keys]


def _names(text: str | None, valid, flag: str) -> tuple[str, ...]:
    from jaxnin.errors import JaxninError

    chosen = tuple(valid) if text is None else tuple(p.strip() for p in text.split(",") if p.strip())
    unknown = [p for p in chosen if p not in valid]
    if unknown or not chosen:
        raise JaxninError(f"{flag} {text!r}: choose from {','.join(valid)} (comma-separated)")
    return chosen
