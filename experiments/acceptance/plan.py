"""The acceptance runs, most important first: each is one or two recipe command lines.

A command is `python -m MODULE FLAGS...` with the recipes' user-facing flags; `{workdir}` and
`{records}` are filled in by the runner (a scratch training folder, and the run's record
folder under --out). `--tiny` gives the same parts at CPU sizes, with repeated runs cut to one
(one main-job seed, one bench call, one ablation variant), so that a test can run them all.
"""
import dataclasses

from jaxnin.experiments.nin_ablation import VARIANTS

PARTS = ("smoke", "accuracy", "speed", "ablation")
WORKDIR, RECORDS, DATA_DIR = "{workdir}", "{records}", "{data_dir}"


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


# Full size: a few steps at the recipes' real input sizes, so each real program compiles.
SMOKE = ("--epochs", "1", "--limit-train", "1024", "--limit-test", "500")
# --tiny: CPU sizes (NiN's smallest input is 67; VGG at 32 with an eighth of the channels).
TINY = ("--epochs", "1", "--limit-train", "256", "--limit-test", "100", "--eval-batch-size", "100")
# NiN with the README's quick CPU optimizer: with the seed's SGD lr 0.1 at these sizes every
# class channel dies in the first epoch, and the recipe stops there with exit code 2.
TINY_NIN = (*TINY, "--resize", "67", "--batch-size", "32", "--optimizer", "adam", "--lr", "0.001")
TINY_VGG = (*TINY, "--resize", "32", "--width-divisor", "8", "--batch-size", "32")
TINY_VIDEO = ("--epochs", "1", "--frames", "4", "--size", "32", "--resize", "67",
              "--batch-size", "16", "--eval-batch-size", "100")
MAIN_JOB_TARGET, VGG_TARGET, LENET_TARGET = 0.885, 0.92, 0.99
# Variants of the main job measured over the same seeds as its default, so that one
# can become the documented default if the seed's recipe misses MAIN_JOB_TARGET on a seed. A
# last block without its final ReLU is the one lever that makes a dead class impossible
# (experiments/video_nin/ measures it on the CPU).
MAIN_CANDIDATES = {"linear-logits": ("--linear-logits",)}
ABLATION_SEEDS = 5


def plan(tiny: bool = False) -> list[Run]:
    """Every run, in priority order: smoke, accuracy, speed, ablation."""
    return [*smoke(tiny), *accuracy(tiny), *speed(tiny), *ablation(tiny)]


def _train(key, part, label, module, recipe, flags, target=None) -> Run:
    data = () if module == "video_nin" else ("--data-dir", DATA_DIR)  # video: sample clips
    command = (f"jaxnin.experiments.{module}", *flags, *data, "--workdir", WORKDIR)
    return Run(key, part, label, recipe, "train", (command,), target)


def smoke(tiny: bool) -> list[Run]:
    nin, vgg = (TINY_NIN, TINY_VGG) if tiny else (SMOKE, SMOKE)
    lenet = ("--tuned", *(TINY if tiny else SMOKE))
    video = TINY_VIDEO if tiny else ("--epochs", "1")
    runs = [_train("smoke-nin", "smoke", "fashion_nin, a few steps", "fashion_nin",
                   "fashion_nin", nin),
            _train("smoke-vgg11", "smoke", "fashion_vgg, a few steps", "fashion_vgg",
                   "fashion_vgg", vgg),
            _train("smoke-lenet", "smoke", "mnist_lenet --tuned, a few steps", "mnist_lenet",
                   "mnist_lenet", lenet),
            _train("smoke-video", "smoke", "video_nin, 1 epoch", "video_nin", "video_nin", video),
            *(_train(f"smoke-{name}", "smoke", f"{module} {' '.join(flag)}", module, module,
                     (*base, *flag))
              # --tiny checks the runner, not the features (their own tests do): on the CPU,
              # vmapped NiN seeds compile and run slowly, so the tiny version takes LeNet.
              for module, base in [("mnist_lenet", lenet) if tiny else ("fashion_nin", nin)]
              for name, flag in (("seeds2", ("--seeds", "2")),
                                 ("bf16", ("--dtype", "bfloat16"))))]
    export = _train("smoke-export", "smoke", "export_onnx of a fashion_nin run", "fashion_nin",
                    "export_onnx", nin)
    runs.append(dataclasses.replace(export, kind="export", commands=(
        *export.commands, ("jaxnin.export_onnx", WORKDIR, "--data-dir", DATA_DIR))))
    return runs


def accuracy(tiny: bool) -> list[Run]:
    seeds = (0,) if tiny else (0, 1, 2)
    nin, vgg = (TINY_NIN, TINY_VGG) if tiny else ((), ())
    runs = [_train(f"main-seed{s}", "accuracy", f"main job (fashion_nin defaults), seed {s}",
                   "fashion_nin", "fashion_nin", (*nin, "--seed", str(s)),
                   Target("final_test_acc", MAIN_JOB_TARGET)) for s in seeds]
    runs.append(_train("vgg11", "accuracy", "fashion_vgg defaults (VGG-11)", "fashion_vgg",
                       "fashion_vgg", vgg, Target("final_test_acc", VGG_TARGET)))
    runs += [_train(f"candidate-{name}-seed{s}", "accuracy",
                    f"main job {' '.join(flags)} (a candidate default), seed {s}", "fashion_nin",
                    "fashion_nin", (*nin, *flags, "--seed", str(s)),
                    Target("final_test_acc", MAIN_JOB_TARGET))
             for name, flags in MAIN_CANDIDATES.items() for s in seeds]
    runs.append(_train("lenet-tuned", "accuracy", "mnist_lenet --tuned", "mnist_lenet",
                       "mnist_lenet", ("--tuned", *(TINY if tiny else ())),
                       Target("final_test_acc", LENET_TARGET)))
    runs.append(_train("video", "accuracy", "video_nin defaults (224, 300 epochs), sample clips",
                       "video_nin", "video_nin", TINY_VIDEO if tiny else ()))
    return runs


def _bench(key, label, flags) -> Run:
    command = ("experiments.bench", *flags, "--data-dir", DATA_DIR, "--out", RECORDS)
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
    flags = ("--quick", "--seeds", "1") if tiny else ("--seeds", str(ABLATION_SEEDS))
    return [Run(f"ablation-{v.key}", "ablation", f"nin_ablation {v.key}: {v.label}",
                "nin_ablation", "ablation",
                (("jaxnin.experiments.nin_ablation", "--variants", v.key, *flags,
                  "--data-dir", DATA_DIR, "--workdir", WORKDIR, "--out", RECORDS),))
            for v in variants]


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
