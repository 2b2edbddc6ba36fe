"""What every recipe's command line shares: flags over a TrainConfig, data, fit, errors."""
import argparse
import dataclasses
import signal
import time
from pathlib import Path
from typing import Callable, Sequence

from jaxnin.cli import ArgumentParser, run_main
from jaxnin.data import load_data
from jaxnin.train.config import DTYPES, TrainConfig
from jaxnin.train.loop import fit
from jaxnin.train.optim import OPTIMIZERS, SCHEDULES
from jaxnin.train.sharding import add_distributed_flags, initialize_from_flags, is_primary


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A seed experiment: its defaults, its model flags, and how it names its workdir."""
    prog: str
    description: str
    defaults: TrainConfig
    run_name: Callable[[TrainConfig, int, int], str]  # (config, in_channels, classes) -> name
    add_model_flags: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    model_options: Callable[[argparse.Namespace], dict] = lambda args: {}
    model_name: Callable[[argparse.Namespace], str | None] = lambda args: None  # a model flag
    variants: dict[str, TrainConfig] = dataclasses.field(default_factory=dict)  # --<name> flags
    data_dir_help: str = ("folder holding <dataset>/ with the four MNIST-format .gz files "
                          "(default: $JAXNIN_DATA_DIR, else tfds downloads them)")
    add_data_flags: Callable[[argparse.ArgumentParser], None] = lambda parser: None
    data_options: Callable[[argparse.Namespace], dict] = lambda args: {}  # -> config.data_options

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Entry point for `python -m`: one-line errors, exit code 2, --debug for tracebacks."""
        return run_main(self._run, argv)

    def _run(self, argv) -> int:
        args = self.parser().parse_args(argv)
        config = self.config(args)
        config.validate()  # bad flags fail now, before the data loads
        initialize_from_flags(args)  # before anything touches a device
        start = time.perf_counter()
        data = load_data(config.dataset, config.data_dir, config.data_options)
        load_s = time.perf_counter() - start
        name = self.run_name(config, data.train_images.shape[-1], len(data.class_names))
        workdir = args.workdir or Path("runs") / (
            name + (f"_seeds{config.seeds}" if config.seeds > 1 else ""))
        if is_primary():
            print(f"{self.prog}: {config.model} on {config.dataset} ({data.source}, "
                  f"{load_s:.1f} s) -> {workdir}")
        interrupt_on_sigterm()
        fit(config, data, workdir, resume=args.resume)
        return 0

    def config(self, args: argparse.Namespace) -> TrainConfig:
        """The recipe's defaults (or a chosen variant's) with every given flag applied."""
        base = next((v for k, v in self.variants.items() if getattr(args, k, False)),
                    self.defaults)
        overrides = {k: getattr(args, k) for k in (
            "data_dir", "epochs", "batch_size", "eval_batch_size", "optimizer", "lr", "momentum",
            "schedule", "step_size", "gamma", "dtype", "seed", "seeds", "limit_train",
            "limit_test", "shard_params")}
        resize = base.resize if args.resize is None else (args.resize or None)
        options = {**base.model_options, **self.model_options(args)}
        data_options = {**base.data_options, **self.data_options(args)}
        model = self.model_name(args) or base.model
        return dataclasses.replace(base, model=model, resize=resize, model_options=options,
                                   data_options=data_options,
                                   **{k: v for k, v in overrides.items() if v is not None})

    def parser(self) -> argparse.ArgumentParser:
        d = self.defaults
        parser = ArgumentParser(prog=f"python -m {self.prog}", description=self.description,
                                         formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        add = parser.add_argument
        add("--data-dir", help=self.data_dir_help)
        add("--workdir", help="where checkpoints, history and curves go (default: runs/<name>)")
        add("--epochs", type=int, help=f"training epochs [{d.epochs}]")
        add("--batch-size", type=int, help=f"training batch size [{d.batch_size}]")
        add("--eval-batch-size", type=int, help=f"evaluation batch size [{d.eval_batch_size}]")
        add("--lr", type=float, help=f"(initial) learning rate [{d.lr}]")
        add("--optimizer", choices=OPTIMIZERS, help=f"[{d.optimizer}]")
        add("--momentum", type=float, help=f"for --optimizer momentum [{d.momentum}]")
        add("--schedule", choices=SCHEDULES,
            help=f"lr schedule; step is PyTorch's StepLR per epoch [{d.schedule}]")
        add("--step-size", type=int, help=f"StepLR: epochs between decays [{d.step_size}]")
        add("--gamma", type=float, help=f"StepLR: decay factor [{d.gamma}]")
        add("--resize", type=int, help=f"resize images to this square size on the device; "
            f"0 keeps 28x28 [{d.resize}]")
        add("--dtype", choices=DTYPES, help=f"compute dtype; params stay float32 [{d.dtype}]")
        add("--seed", type=int, help=f"seeds init, shuffling and dropout [{d.seed}]")
        add("--seeds", type=int, help="train K replicas (seeds seed..seed+K-1) at once in one "
            "program; report each seed and the mean ± std [1]")
        add("--limit-train", type=int, help="train on the first N training examples only")
        add("--limit-test", type=int, help="evaluate on the first N test examples only")
        add("--shard-params", action="store_true", default=None, help="split the large params "
            "and their optimizer state over the devices (FSDP-style) instead of replicating "
            "them; for models that crowd one device, e.g. VGG's heads")
        add("--resume", action="store_true", help="continue the run in --workdir from its latest "
            "checkpoint (same flags; --epochs may grow)")
        add("--debug", action="store_true", help="show tracebacks instead of one-line errors")
        add_distributed_flags(parser)
        self.add_model_flags(parser)
        self.add_data_flags(parser)
        return parser


def interrupt_on_sigterm() -> None:
    """SIGTERM (a cluster's pre-emption, `kill`) takes the same clean path as Ctrl-C."""
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum, frame):
    # SIGTERM (a cluster's pre-emption, `kill`) takes the same clean path as Ctrl-C.
    raise KeyboardInterrupt
