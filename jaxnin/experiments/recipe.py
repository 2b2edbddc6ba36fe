"""A recipe (jaxnin.recipes) as a command: `python -m jaxnin.experiments.<name> [flags]`.

Every flag is made from an option field (jaxnin.options.option): the training options of
TrainConfig, the model's options (fields of its Flax module, -> config.model_options) and the
dataset's (-> config.data_options). Only what belongs to one invocation, not to the run
(--workdir, --resume, --from, --debug, the distributed runtime), is declared here by hand.
The command shows what `fit` does: the progress, each epoch's line, TensorBoard scalars, the
curves, and d2l's closing lines.

The default workdir is runs/<name>: the recipe's own name for the run (`run_name`, as its seed
named its folders), then one `<key>-<value>` token for each value that changes what is trained
and differs from the recipe (or from the variant chosen, `--tuned`), sorted by key: a training
option, a model option or a data option, e.g.
`runs/NiN_in1_out10_lr0.1_ep10_optimizer-adam_resize-96`; then `_seeds<K>` for K seeds. Keys
the name already shows (`shown`: lr, epochs, ...) and values that do not change what is
trained (UNNAMED: where the data is, the evaluation batch, which checkpoints are kept, how
params are placed) add nothing, so a command without such flags keeps its seed's name.
"""
import argparse
import dataclasses
import json
import re
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from jaxnin.cli import (ArgumentParser, add_distributed_flags, add_flags, given,
                        initialize_from_flags, interrupt_on_sigterm, path_arg, run_main)
from jaxnin.recipes import RECIPES
from jaxnin.train.config import TrainConfig, model_options_in_full

# Fields that do not change what is trained, left out of a run's name: where the data is read
# from, the evaluation batch, which checkpoints are kept, how params are placed, and `seeds`
# (its own `_seeds<K>` suffix). The options dicts are compared key by key instead.
UNNAMED = ("data_dir", "eval_batch_size", "best", "shard_params", "seeds", "model_options",
           "data_options")


@dataclasses.dataclass(frozen=True)
class Variant:
    """Another recipe that a flag of this command chooses (`--tuned` -> mnist_lenet.tuned)."""
    name: str
    help: str
    config: TrainConfig


@dataclasses.dataclass(frozen=True)
class Command:
    """A recipe's command line: its defaults, its variants, its option flags, its workdir
    (runs/<workdir_name> by default, named as the module's docstring says)."""
    prog: str
    description: str
    defaults: TrainConfig
    run_name: Callable[[TrainConfig, int, int], str]  # (config, in_channels, classes) -> name
    data_flags: type | None = None  # a dataclass of option fields -> config.data_options
    variants: tuple[Variant, ...] = ()  # each a --<name> flag choosing another base config
    # A model option that picks the model rather than configures it, and the model each of
    # its values names (VGG's --config A -> vgg11).
    model_chooser: tuple[str, Callable[[str], str]] | None = None
    help_overrides: dict = dataclasses.field(default_factory=dict)  # field -> recipe's help
    aliases: dict = dataclasses.field(default_factory=dict)  # field -> extra flag names
    shown: tuple[str, ...] = ("lr", "epochs")  # the keys `run_name` itself shows

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Entry point for `python -m`: one-line errors, exit code 2, --debug for tracebacks."""
        return run_main(self._run, argv)

    def _run(self, argv) -> int:
        from jaxnin.data import load_data  # the heavy stack loads after --help and bad flags
        from jaxnin.report.estimate import Workload
        from jaxnin.report.logging import (Console, Curves, TensorBoard, device_text,
                                           final_lines, seed_lines)
        from jaxnin.terminal import print_line
        from jaxnin.run import fit
        from jaxnin.train.sharding import is_primary

        args = self.parser().parse_args(argv)
        config = self.config(args)
        initialize_from_flags(args)  # before anything touches a device
        start = time.perf_counter()
        data = load_data(config.dataset, config.data_dir, config.data_options)
        load_s = time.perf_counter() - start
        workdir = Path(args.workdir or Path("runs") / self.workdir_name(
            config, self.reference(args), data.train_images.shape[-1], len(data.class_names)))
        if is_primary():
            print_line(f"{self.prog}: {config.model} on {config.dataset} ({data.source}, "
                       f"{load_s:.1f} s) -> {workdir}")
        interrupt_on_sigterm()
        work = Workload.of(config, len(data.test_labels[:config.limit_test]),
                           cpu_recipe=self.cpu_recipe(args))
        console = Console(config.epochs, work=work)
        writers = [console, TensorBoard(workdir.absolute()),
                   Curves(workdir.absolute(), f"{config.model} on {config.dataset}")]
        run = fit(config, data, workdir, resume=args.resume, callbacks=writers,
                  progress=console)
        if is_primary():
            print_line(final_lines(run.history, device_text()))
            results = json.loads((run.workdir / "run.json").read_text())["results"]
            print_line(seed_lines(results))
        return 0

    def workdir_name(self, config: TrainConfig, reference: TrainConfig, in_channels: int,
                     classes: int) -> str:
        """The default workdir's name (see the module's docstring): `run_name`, a token per
        value of `config` that changes what is trained and differs from `reference`, seeds."""
        tokens = [name_token(key, value) for key, value in sorted(differences(
            config, reference).items()) if key not in self.shown]
        seeds = [f"seeds{config.seeds}"] if config.seeds > 1 else []
        return "_".join([self.run_name(config, in_channels, classes), *tokens, *seeds])

    def reference(self, args: argparse.Namespace) -> TrainConfig:
        """The recipe the flags start from: the chosen variant's, else this command's."""
        chosen = self._chosen(args)
        return chosen.config if chosen else self.defaults

    def config(self, args: argparse.Namespace) -> TrainConfig:
        """The recipe's defaults (or a chosen variant's, or a run's) with every flag applied."""
        base = _config_of_run(args.from_run) if args.from_run else self.reference(args)
        model_options = given(args, self._model_class(base))
        model = base.model
        if self.model_chooser and self.model_chooser[0] in model_options:
            key, name_of = self.model_chooser
            model = name_of(model_options.pop(key))
        data_options = given(args, self.data_flags) if self.data_flags else {}
        return base.replace(model=model, model_options={**base.model_options, **model_options},
                            data_options={**base.data_options, **data_options},
                            **given(args, type(self.defaults)))

    def cpu_recipe(self, args: argparse.Namespace):
        """The recipe `<name>.cpu` (sized for a CPU) to suggest where a run is slow on one;
        None where there is none, or it is the one chosen."""
        chosen = self._chosen(args)
        return None if chosen and chosen.name == "cpu" else RECIPES.get(f"{self.name}.cpu")

    @property
    def name(self) -> str:
        """The recipe's name in RECIPES: fashion_nin for jaxnin.experiments.fashion_nin."""
        return self.prog.rsplit(".", 1)[-1]

    def _chosen(self, args: argparse.Namespace) -> Variant | None:
        return next((v for v in self.variants if getattr(args, v.name, False)), None)

    def _model_class(self, config: TrainConfig) -> type:
        from jaxnin.models import model_class

        return model_class(config.model)

    def parser(self) -> argparse.ArgumentParser:
        parser = ArgumentParser(prog=f"python -m {self.prog}", description=self.description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        add = parser.add_argument
        bases = parser.add_mutually_exclusive_group()  # each is a whole recipe: one at most
        for variant in self.variants:
            bases.add_argument(f"--{variant.name}", action="store_true", help=variant.help)
        bases.add_argument("--from", dest="from_run", metavar="RUN", type=path_arg,
                           help="start from the config of a run (its run.json, or the folder "
                           "holding it) instead of this recipe's; other flags still override")
        add("--workdir", type=path_arg,
            help="where checkpoints, history and curves go (default: runs/<name>)")
        add("--resume", action="store_true", help="continue the run in --workdir from its latest "
            "checkpoint (same flags; --epochs may grow, except with --schedule cosine)")
        add("--debug", action="store_true", help="show tracebacks instead of one-line errors")
        add_flags(parser.add_argument_group("training options"), self.defaults,
                  help_overrides=self.help_overrides, aliases=self.aliases)
        model = self._model_class(self.defaults)
        add_flags(parser.add_argument_group("model options"),
                  model(**self.defaults.model_options))
        if self.data_flags is not None:
            add_flags(parser.add_argument_group("data options"),
                      self.data_flags(**self.defaults.data_options))
        add_distributed_flags(parser.add_argument_group("several processes"))
        return parser


def command_of(name: str, **fields) -> Command:
    """The Command of recipe `name`, its `<name>.<variant>` recipes as --<variant> flags."""
    variants = tuple(Variant(key.split(".", 1)[1], recipe.purpose, recipe.config)
                     for key, recipe in RECIPES.items() if key.startswith(name + "."))
    return Command(prog=f"jaxnin.experiments.{name}", defaults=RECIPES[name].config,
                   variants=variants, **fields)


def differences(config: TrainConfig, reference: TrainConfig) -> dict[str, Any]:
    """{key: `config`'s value} of each field, model option and data option of `config` that
    changes what is trained (not UNNAMED) and differs from `reference`'s. Model options are
    compared in full: an option typed at its default is no difference."""
    mine, theirs = config.to_json(), reference.to_json()
    changed = {k: v for k, v in mine.items() if k not in UNNAMED and v != theirs[k]}
    options = ((model_options_in_full(config.model, config.model_options),
                model_options_in_full(reference.model, reference.model_options)),
               (mine["data_options"], theirs["data_options"]))
    for ours, base in options:
        changed |= {k: v for k, v in ours.items() if v != base.get(k, object())}
    return changed


def name_token(key: str, value) -> str:
    """`batch-size-64`, `optimizer-adam`, `resize-none`: a key as its flag, then its value,
    with nothing a folder name should not hold."""
    text = ("none" if value is None else str(value).lower() if isinstance(value, bool)
            else f"{value:g}" if isinstance(value, float) else str(value))
    return re.sub(r"[^A-Za-z0-9.+-]", "", f"{key.replace('_', '-')}-{text}")


def _config_of_run(path: str) -> TrainConfig:
    from jaxnin.train.run_dir import run_config

    path = Path(path)
    return run_config(path.parent if path.name == "run.json" else path)
