"""A training run's full configuration: the seed recipe's values, each overridable by a flag."""
import dataclasses
from typing import Any, Mapping

from jaxnin.errors import JaxninError
from jaxnin.models import MODELS
from jaxnin.train.checkpoint import BEST_BY
from jaxnin.train.optim import OPTIMIZERS, SCHEDULES

DTYPES = ("float32", "bfloat16")
# Keys that may change between a run and its --resume: more epochs, or data moved elsewhere.
RESUMABLE_CHANGES = ("epochs", "data_dir", "shard_params")  # where the state lives, too


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run; `run.json` stores it and reproduces the run."""
    model: str = "nin"
    model_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    data_options: Mapping[str, Any] = dataclasses.field(default_factory=dict)  # e.g. video frames
    epochs: int = 10
    batch_size: int = 128
    eval_batch_size: int = 500
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    schedule: str = "constant"
    step_size: int = 10
    gamma: float = 0.1
    resize: int | None = 224
    dtype: str = "float32"
    seed: int = 0
    seeds: int = 1  # replicas trained at once in one program, seeded seed, seed + 1, ...
    limit_train: int | None = None
    limit_test: int | None = None
    best: tuple[str, ...] = ("best_loss",)
    shard_params: bool = False  # FSDP-style: large params and their optimizer state split

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
        for ok, message in [
            (self.model in MODELS, f"unknown model {self.model!r}: choose one of {', '.join(MODELS)}"),
            (self.optimizer in OPTIMIZERS,
             f"unknown --optimizer {self.optimizer!r}: choose one of {', '.join(OPTIMIZERS)}"),
            (self.schedule in SCHEDULES,
             f"unknown --schedule {self.schedule!r}: choose one of {', '.join(SCHEDULES)}"),
            (self.dtype in DTYPES, f"unknown --dtype {self.dtype!r}: choose one of {', '.join(DTYPES)}"),
            (self.lr > 0, f"--lr must be positive, got {self.lr}"),
            (self.seeds >= 1, f"--seeds must be at least 1, got {self.seeds}"),
            (self.epochs >= 1, f"--epochs must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, f"--batch-size must be at least 1, got {self.batch_size}"),
            (num_train is None or self.batch_size <= num_train, f"--batch-size {self.batch_size} is larger than the "
             f"{num_train} training examples: lower it or raise --limit-train"),
            (self.eval_batch_size >= 1, f"eval batch size must be at least 1, got {self.eval_batch_size}"),
            (self.step_size >= 1, f"--step-size must be at least 1 epoch, got {self.step_size}"),
            (self.resize is None or self.resize >= 1, f"--resize must be positive, got {self.resize}"),
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
