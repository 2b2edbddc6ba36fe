"""A run's configuration, each option described once, and the command line made from it.

An option is a dataclass field made by `option()`: its type is the annotation, and its default
and help sit beside it. `add_flags` turns the option fields of any such dataclass (TrainConfig,
a model's or a dataset's options, the bench's settings) into argparse flags whose help shows
the default of the recipe at hand once; `given` reads back the flags the user typed. So a new
training option is one line here, and every recipe's `--help` lists it.
"""
import dataclasses
import types
from typing import Any, Callable, Mapping

from jaxnin.errors import JaxninError
from jaxnin.models import MODELS
from jaxnin.train.checkpoint import BEST_BY
from jaxnin.train.optim import OPTIMIZERS, SCHEDULES, check_optimizer_flags

DTYPES = ("float32", "bfloat16")
# Keys that may change between a run and its --resume: more epochs (as the schedule allows,
# see optim.check_resume_epochs), or data moved elsewhere.
RESUMABLE_CHANGES = ("epochs", "data_dir", "shard_params")  # where the state lives, too


def option(default: Any = None, help: str = "", *, flag: bool = True,
           choices: tuple | None = None, convert: Callable[[Any], Any] | None = None,
           default_factory: Callable[[], Any] | None = None) -> Any:
    """A config field and, where `flag`, its `--field-name` command-line flag.

    `convert` maps the typed value to the stored one (e.g. `--resize 0` to None).
    """
    metadata = {"help": help, "flag": flag, "choices": choices, "convert": convert}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def _keep_stored_size(size: int) -> int | None:
    return size or None


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run; `run.json` stores it and reproduces the run."""
    model: str = option("nin", flag=False)  # recipes choose it (VGG's --config)
    model_options: Mapping[str, Any] = option(flag=False, default_factory=dict)
    dataset: str = option("fashion_mnist", flag=False)
    data_dir: str | None = option(None, "folder holding <dataset>/ with the four MNIST-format "
                                  ".gz files (default: $JAXNIN_DATA_DIR, else tfds downloads "
                                  "them)")
    data_options: Mapping[str, Any] = option(flag=False, default_factory=dict)  # video frames
    epochs: int = option(10, "training epochs")
    batch_size: int = option(128, "training batch size")
    eval_batch_size: int = option(500, "evaluation batch size")
    optimizer: str = option("sgd", "optimizer", choices=OPTIMIZERS)
    lr: float = option(0.1, "(initial) learning rate")
    momentum: float = option(0.9, "for --optimizer momentum, in [0, 1)")
    schedule: str = option("constant", "lr schedule; step is PyTorch's StepLR per epoch",
                           choices=SCHEDULES)
    step_size: int = option(10, "StepLR: epochs between decays")
    gamma: float = option(0.1, "StepLR: decay factor, in (0, 1]")
    warmup_steps: int = option(0, "scale the lr by min(1, (t + 1) / N) over the first N "
                               "optimizer steps t, on top of the schedule; 0: no warm-up")
    clip_norm: float | None = option(None, "clip each step's gradients to this global L2 norm "
                                     "(torch's clip_grad_norm_); default: no clipping")
    resize: int | None = option(224, "resize images to this square size on the device; 0 keeps "
                                "the stored size", convert=_keep_stored_size)
    dtype: str = option("float32", "compute dtype; params stay float32", choices=DTYPES)
    seed: int = option(0, "seeds init, shuffling and dropout")
    seeds: int = option(1, "train K replicas (seeds seed..seed+K-1) at once in one program; "
                        "report each seed and the mean ± std")
    limit_train: int | None = option(None, "train on the first N training examples only")
    limit_test: int | None = option(None, "evaluate on the first N test examples only")
    best: tuple[str, ...] = option(("best_loss",), flag=False)
    shard_params: bool = option(False, "split the large params and their optimizer state over "
                                "the devices (FSDP-style) instead of replicating them; for "
                                "models that crowd one device, e.g. VGG's heads")

    def to_json(self) -> dict:
        return {**dataclasses.asdict(self), "model_options": dict(self.model_options),
                "data_options": dict(self.data_options),
                "best": list(self.best)}

    @classmethod
    def from_json(cls, record: Mapping[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: (tuple(v) if k == "best" else v) for k, v in record.items() if k in known})

    def validate(self, num_train: int | None = None) -> None:
        """Raise a JaxninError naming the first flag whose value cannot work.

        Without `num_train` (before the data is loaded) the batch is not checked against it.
        """
        check_optimizer_flags(self.optimizer, self.lr, self.momentum, self.schedule,
                              self.step_size, self.gamma, self.warmup_steps, self.clip_norm)
        for ok, message in [
            (self.model in MODELS, f"unknown model {self.model!r}: choose one of {', '.join(MODELS)}"),
            (self.dtype in DTYPES, f"unknown --dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}"),
            (self.seeds >= 1, f"--seeds must be at least 1, got {self.seeds}"),
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (num_train is None or self.batch_size <= num_train,
             f"--batch-size {self.batch_size} is larger than the {num_train} training examples"
             + (": lower it or raise --limit-train" if self.limit_train == num_train
                else " the data holds: lower it")),
            (self.eval_batch_size >= 1, f"--eval-batch-size must be at least 1, got {self.eval_batch_size}"),
            (self.resize is None or self.resize >= 1, f"--resize must be positive, got {self.resize}"),
            (self.limit_train is None or self.limit_train >= 1,
             f"--limit-train must be at least 1 example, got {self.limit_train}"),
            (self.limit_test is None or self.limit_test >= 1,
             f"--limit-test must be at least 1 example, got {self.limit_test}"),
            (set(self.best) <= set(BEST_BY), f"unknown best checkpoints {self.best}"),
        ]:
            if not ok:
                raise JaxninError(message)

    @property
    def seed_values(self) -> list[int]:
        """The seed of each replica: replica i is the run that --seed seed+i alone would be."""
        return list(range(self.seed, self.seed + self.seeds))

    def changed_keys(self, other: "TrainConfig") -> list[str]:
        """Keys, other than those a resume may change, whose values differ from `other`'s."""
        mine, theirs = self.to_json(), other.to_json()
        return sorted(k for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs.get(k))


@dataclasses.dataclass(frozen=True)
class NamedConfig:
    """A config with a name and what it is for: a recipe's variant (`--tuned`), an ablation's
    setting, a bench's recipe."""
    name: str
    help: str
    config: TrainConfig


# --- the command line, generated from option fields --------------------------------------

def add_flags(parser, defaults, *, help_overrides: Mapping[str, str] | None = None,
              aliases: Mapping[str, tuple[str, ...]] | None = None) -> None:
    """One flag per option field of `defaults`' dataclass, its help ending in `defaults`' value.

    Flags default to None, so that `given` can tell what the user typed from what they did not.
    """
    for field in flag_fields(type(defaults)):
        meta, name = field.metadata, field.name
        help_text = (help_overrides or {}).get(name, meta["help"])
        shown = getattr(defaults, name)
        kind = _flag_type(field.type)
        kwargs = {"action": "store_true"} if kind is bool else {"type": kind,
                                                                  "choices": meta["choices"]}
        parser.add_argument(*(aliases or {}).get(name, ()), "--" + name.replace("_", "-"),
                            dest=name, default=None,
                            help=help_text + ("" if shown is None else f" (default: {shown})"),
                            **kwargs)


def given(args, cls) -> dict:
    """The option values of dataclass `cls` that were typed on the command line, converted."""
    typed = {}
    for field in flag_fields(cls):
        value = getattr(args, field.name, None)
        if value is not None:
            convert = field.metadata["convert"]
            typed[field.name] = convert(value) if convert else value
    return typed


def flag_fields(cls) -> list[dataclasses.Field]:
    return [f for f in dataclasses.fields(cls) if f.metadata.get("flag")]


def option_defaults(cls) -> dict:
    """{name: default} of `cls`' option fields."""
    return {f.name: f.default for f in flag_fields(cls)}


def _flag_type(annotation) -> type:
    """int for `int` and `int | None`, and so on."""
    if isinstance(annotation, types.UnionType):
        (annotation,) = [a for a in annotation.__args__ if a is not type(None)]
    return annotation
