"""A run's configuration: TrainConfig, each option declared once with its meaning and range.

An option is a field made by jaxnin.options.option(): `help(TrainConfig)` lists them, command
lines make their flags from them (jaxnin.cli), `run.json` stores them, and a value outside a
field's range is refused when the config is made, naming the field.

A config holds no model's defaults of its own: the fields a recipe sets (dataset, epochs,
optimizer, lr, ...) that are not given come from the model's recipe (jaxnin.recipes), so that
`TrainConfig(model="lenet")` is seed 002's LeNet-5 recipe, not NiN's main job with LeNet in it.
"""
import dataclasses
import functools
import json
from typing import Any, Mapping

from jaxnin.data import video
from jaxnin.errors import JaxninError
from jaxnin.models import MODELS, check_model_options, model_class
from jaxnin.options import (COUNT, INT32_MAX, POSITIVE, SEED, Documented, Range, check_options,
                            check_value, check_values, option, option_defaults)
from jaxnin.train.checkpoint import BEST_BY
from jaxnin.train.kernels import CPU_CONVOLUTIONS
from jaxnin.train.optim import OPTIMIZERS, SCHEDULES, gamma_advice

DTYPES = ("float32", "bfloat16")
# Keys that may change between a run and its resume: more epochs (as the schedule allows,
# see optim.check_resume_epochs), or data or state placed elsewhere.
RESUMABLE_CHANGES = ("epochs", "data_dir", "shard_params")
SEEDS = Range(1, 1024)  # replicas trained at once (`seeds`), by a config or by a tool


class _FromRecipe:
    """The default of a field that the model's recipe sets (see TrainConfig)."""

    def __repr__(self):
        return "<the model's recipe>"


FROM_RECIPE = _FromRecipe()


def _keep_stored_size(size: int) -> int | None:
    return size or None


@dataclasses.dataclass(frozen=True)
class TrainConfig(metaclass=Documented):
    """Everything that determines a run; `run.json` stores it and reproduces the run.

    `model` is required. Fields shown as <the model's recipe> and not given are taken from
    the recipe of that model and `dataset` (jaxnin.recipes.recipe_for), so a config built in
    code trains what the recipe trains unless told otherwise. Make one from a recipe with
    `jaxnin.recipe(name)` and change it with `dataclasses.replace` (or `.replace`).
    Values outside an option's range raise a JaxninError naming the field.
    """
    model: str = option(help="registered model name (jaxnin.models.MODELS)", flag=False,
                        choices=tuple(MODELS))
    model_options: Mapping[str, Any] = option(FROM_RECIPE, "the model module's options, e.g. "
                                              "{'num_1x1': 1} (see help() of its class)",
                                              flag=False)
    dataset: str = option(FROM_RECIPE, "dataset name (jaxnin.data.DATASETS, or your own "
                          "ImageDataset's name)", flag=False)
    data_dir: str | None = option(None, "folder holding <dataset>/ with the four MNIST-format "
                                  ".gz files (default: $JAXNIN_DATA_DIR, else tfds downloads "
                                  "them)", path=True)
    data_options: Mapping[str, Any] = option(FROM_RECIPE, "the dataset loader's options (video "
                                             "frames and size)", flag=False)
    epochs: int = option(FROM_RECIPE, "training epochs", within=COUNT)
    batch_size: int = option(FROM_RECIPE, "training batch size", within=COUNT)
    eval_batch_size: int = option(500, "evaluation batch size (capped at the test split)",
                                  within=COUNT)
    optimizer: str = option(FROM_RECIPE, "optimizer", choices=OPTIMIZERS)
    lr: float = option(FROM_RECIPE, "(initial) learning rate", within=POSITIVE)
    momentum: float = option(FROM_RECIPE, "momentum of the momentum optimizer",
                             within=Range(0, 1, high_open=True))
    schedule: str = option(FROM_RECIPE, "lr schedule; step is PyTorch's StepLR per epoch",
                           choices=SCHEDULES)
    step_size: int = option(FROM_RECIPE, "StepLR: epochs between decays", within=COUNT)
    gamma: float = option(FROM_RECIPE, "StepLR: decay factor",
                          within=Range(0, 1, low_open=True))
    warmup_steps: int = option(0, "scale the lr by min(1, (t + 1) / N) over the first N "
                               "optimizer steps t, on top of the schedule; 0: no warm-up",
                               within=Range(0, INT32_MAX))
    clip_norm: float | None = option(None, "clip each step's gradients to this global L2 norm "
                                     "(torch's clip_grad_norm_); default: no clipping",
                                     within=POSITIVE)
    resize: int | None = option(FROM_RECIPE, "resize images to this square size on the device; "
                                "0 keeps the stored size", convert=_keep_stored_size,
                                within=COUNT)
    dtype: str = option("float32", "compute dtype; params stay float32", choices=DTYPES)
    seed: int = option(0, "seeds init, shuffling and dropout", within=SEED)
    seeds: int = option(1, "train K replicas (seeds seed..seed+K-1) at once in one program; "
                        "report each seed and the mean ± std", within=SEEDS)
    limit_train: int | None = option(None, "train on the first N training examples only",
                                     within=COUNT)
    limit_test: int | None = option(None, "evaluate on the first N test examples only",
                                    within=COUNT)
    best: tuple[str, ...] = option(FROM_RECIPE, "which best checkpoints to keep besides the "
                                   "latest: best_loss (lowest test loss), best_acc", flag=False)
    cpu_convolutions: str = option(FROM_RECIPE, "the library XLA:CPU runs convolutions with: "
                                   "ynnpack (its default) or eigen (NiN's are about 1.6x faster "
                                   "so, its 1x1 convs then run as matrix products); changes a "
                                   "CPU run's bits; other backends ignore it",
                                   choices=CPU_CONVOLUTIONS)
    shard_params: bool = option(False, "split the large params and their optimizer state over "
                                "the devices (FSDP-style) instead of replicating them; for "
                                "models that crowd one device, e.g. VGG's heads")

    def __post_init__(self):
        if self.model is None:
            raise JaxninError(f"`model` is required: one of {', '.join(MODELS)} (or start from "
                              "a recipe: jaxnin.recipe(name))")
        if self.model not in MODELS:
            raise JaxninError(f"`model` must be one of {', '.join(MODELS)}, got {self.model!r}")
        unset = [f.name for f in dataclasses.fields(self) if getattr(self, f.name) is FROM_RECIPE]
        if unset:
            from jaxnin.recipes import recipe_for  # the recipes are TrainConfigs themselves

            base = recipe_for(self.model, None if "dataset" in unset else self.dataset)
            for name in unset:
                object.__setattr__(self, name, getattr(base, name))
        for name in ("model_options", "data_options"):
            object.__setattr__(self, name, dict(getattr(self, name)))
        object.__setattr__(self, "best", tuple(self.best))
        self._check()

    def _check(self) -> None:
        gamma = next(f for f in dataclasses.fields(self) if f.name == "gamma")
        problem = check_value(gamma, self.gamma)
        if problem:  # first, saying what to do instead where 0 would waste epochs
            raise JaxninError(problem + gamma_advice(self.schedule, self.gamma, self.step_size,
                                                     self.epochs))
        check_values(self)
        check_model_options(self.model, self.model_options)
        _check_data_options(self.dataset, self.data_options)
        unknown = set(self.best) - set(BEST_BY)
        if unknown:
            raise JaxninError(f"`best` names unknown checkpoints {sorted(unknown)}: choose from "
                              f"{', '.join(BEST_BY)}")
        if not SEED.contains(self.seed + self.seeds - 1):
            raise JaxninError(f"`seed` {self.seed} + `seeds` {self.seeds} runs past the largest "
                              f"seed, {SEED.high}")

    def replace(self, **changes) -> "TrainConfig":
        """A copy with `changes` applied (and checked), as dataclasses.replace."""
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "model_options": dict(self.model_options),
                "data_options": dict(self.data_options), "best": list(self.best)}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> "TrainConfig":
        """The config a run.json stored; fields it lacks (older runs) take today's defaults."""
        known = {f.name for f in dataclasses.fields(cls)}
        # Every run before the field existed compiled with XLA:CPU's own choice.
        record = {"cpu_convolutions": "ynnpack", **record}
        return cls(**{k: (tuple(v) if k == "best" else v) for k, v in record.items() if k in known})

    def validate(self, num_train: int | None = None) -> None:
        """Raise a JaxninError naming the first field whose value cannot work with the data.

        The ranges are checked when the config is made; this adds what needs the data:
        without `num_train` (before the data is loaded) the batch is not checked against it.
        """
        self._check()
        if num_train is not None and self.batch_size > num_train:
            raise JaxninError(
                f"`batch_size` {self.batch_size} is larger than the {num_train} training "
                "examples" + (": lower it or raise `limit_train`" if self.limit_train == num_train
                              else " the data holds: lower it"))

    @property
    def seed_values(self) -> list[int]:
        """The seed of each replica: replica i is the run that seed seed+i alone would be."""
        return list(range(self.seed, self.seed + self.seeds))

    def changed_keys(self, other: "TrainConfig") -> list[str]:
        """Keys, other than those a resume may change, whose values differ from `other`'s.

        Model options are compared in full, each absent one at the model's declared default:
        `num_1x1` 2 typed out is NiN's default left out, not a change.
        """
        mine, theirs = self.to_json(), other.to_json()
        mine["model_options"] = model_options_in_full(self.model, mine["model_options"])
        theirs["model_options"] = model_options_in_full(other.model, theirs["model_options"])
        return sorted(k for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs.get(k))


def model_options_in_full(model: str, options: Mapping[str, Any]) -> dict:
    """`options` with every option `model` declares and they leave out at its default (the
    registered variant's where it fixes one), as JSON would hold them (tuples as lists)."""
    if model not in MODELS:
        return dict(options)
    defaults = option_defaults(model_class(model))
    registered = MODELS[model]
    if isinstance(registered, functools.partial):
        defaults.update({k: v for k, v in registered.keywords.items() if k in defaults})
    return json.loads(json.dumps({**defaults, **options}, default=repr))


def _check_data_options(dataset: str, options: Mapping[str, Any]) -> None:
    """Clips take the loader's options (jaxnin.data.video.ClipOptions); image sets take none."""
    if dataset == video.NAME:
        check_options(video.ClipOptions, dict(options), f"dataset {dataset!r}")
    elif options:
        raise JaxninError(f"dataset {dataset!r} takes no `data_options`, got "
                          f"{', '.join(options)}")


@dataclasses.dataclass(frozen=True)
class NamedConfig:
    """A config with a name and what it is for: a recipe's variant (`tuned`), an ablation's
    setting."""
    name: str
    help: str
    config: TrainConfig
