"""A seed experiment as a command: a named config plus its model and data options.

Every flag is generated from an option field (jaxnin.train.config.option): the training
options of TrainConfig, the recipe's model options (-> config.model_options) and data options
(-> config.data_options). Only what belongs to one invocation, not to the run (--workdir,
--resume, --debug, the distributed runtime), is declared here by hand.
"""
import argparse
import dataclasses
import time
from pathlib import Path
from typing import Callable, Sequence

from jaxnin.cli import ArgumentParser, interrupt_on_sigterm, run_main
from jaxnin.train.config import NamedConfig, TrainConfig, add_flags, given, option_defaults
from jaxnin.train.sharding import add_distributed_flags, initialize_from_flags, is_primary


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A seed experiment: its defaults, its variants, its option flags and its workdir name."""
    prog: str
    description: str
    defaults: TrainConfig
    run_name: Callable[[TrainConfig, int, int], str]  # (config, in_channels, classes) -> name
    model_flags: type | None = None  # a dataclass of option fields -> config.model_options
    data_flags: type | None = None  # a dataclass of option fields -> config.data_options
    variants: tuple[NamedConfig, ...] = ()  # each a --<name> flag choosing another base config
    # A model option that picks the model rather than configures it, and the model each of
    # its values names (VGG's --config A -> vgg11).
    model_chooser: tuple[str, Callable[[str], str]] | None = None
    help_overrides: dict = dataclasses.field(default_factory=dict)  # field -> recipe's help
    aliases: dict = dataclasses.field(default_factory=dict)  # field -> extra flag names

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Entry point for `python -m`: one-line errors, exit code 2, --debug for tracebacks."""
        return run_main(self._run, argv)

    def _run(self, argv) -> int:
        from jaxnin.data import load_data  # the heavy stack loads after --help and bad flags
        from jaxnin.run import fit

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
                  f"{load_s:.1f} s) -> {workdir}", flush=True)
        interrupt_on_sigterm()
        fit(config, data, workdir, resume=args.resume)
        return 0

    def config(self, args: argparse.Namespace) -> TrainConfig:
        """The recipe's defaults (or a chosen variant's) with every given flag applied."""
        base = next((v.config for v in self.variants if getattr(args, v.name, False)),
                    self.defaults)
        model_options = given(args, self.model_flags) if self.model_flags else {}
        model = base.model
        if self.model_chooser and self.model_chooser[0] in model_options:
            key, name_of = self.model_chooser
            model = name_of(model_options.pop(key))
        data_options = given(args, self.data_flags) if self.data_flags else {}
        return dataclasses.replace(
            base, model=model, model_options={**base.model_options, **model_options},
            data_options={**base.data_options, **data_options},
            **given(args, type(self.defaults)))

    def parser(self) -> argparse.ArgumentParser:
        parser = ArgumentParser(prog=f"python -m {self.prog}", description=self.description,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
        add = parser.add_argument
        variants = parser.add_mutually_exclusive_group() if self.variants else parser
        for variant in self.variants:  # each is a whole recipe: one at most
            variants.add_argument(f"--{variant.name}", action="store_true", help=variant.help)
        add("--workdir", help="where checkpoints, history and curves go (default: runs/<name>)")
        add("--resume", action="store_true", help="continue the run in --workdir from its latest "
            "checkpoint (same flags; --epochs may grow, except with --schedule cosine)")
        add("--debug", action="store_true", help="show tracebacks instead of one-line errors")
        add_flags(parser.add_argument_group("training options"), self.defaults,
                  help_overrides=self.help_overrides, aliases=self.aliases)
        for title, flags, chosen in (("model options", self.model_flags, self.defaults.model_options),
                                     ("data options", self.data_flags, self.defaults.data_options)):
            if flags is not None:
                add_flags(parser.add_argument_group(title),
                          flags(**{**option_defaults(flags), **chosen}))
        add_distributed_flags(parser.add_argument_group("several processes"))
        return parser
