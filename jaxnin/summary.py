"""`python -m jaxnin.summary MODEL [options]`: a model's per-layer shapes, params and FLOPs.

Every option the model's module declares (jaxnin.options.option) is a flag here, as in the
recipes' commands: `python -m jaxnin.summary nin --help` lists NiN's.
"""
import dataclasses
import sys

from jaxnin.cli import ArgumentParser, add_flags, command_parser, given, options_from, run_main
from jaxnin.errors import JaxninError
from jaxnin.models import DEFAULT_INPUT_SHAPES, MODELS, create_model, model_class
from jaxnin.options import COUNT, option
from jaxnin.report.summary import summarize


@dataclasses.dataclass(frozen=True)
class SummaryOptions:
    """The summary's own options, beside MODEL and the model's options."""
    input_shape: str | None = option(None, "H,W,C of one example [the recipe's]")
    num_classes: int = option(10, "classes of the output layer", within=COUNT)


def main(argv) -> int:
    # The model first, without --help: its options are flags of the full parser.
    first = ArgumentParser(add_help=False)
    first.add_argument("model", nargs="?")
    parser = _parser(first.parse_known_args(argv)[0].model)
    args = parser.parse_args(argv)
    own = options_from(SummaryOptions, args)
    shape = _input_shape(own.input_shape) if own.input_shape else DEFAULT_INPUT_SHAPES[args.model]
    options = given(args, model_class(args.model))
    model = create_model(args.model, num_classes=own.num_classes, **options)
    print(f"{args.model} for input {shape}, {own.num_classes} classes")
    print(summarize(model, shape).table())
    return 0


def _parser(model: str | None = None):
    parser = command_parser("python -m jaxnin.summary", __doc__, SummaryOptions())
    parser.add_argument("model", choices=sorted(MODELS))
    if model in MODELS:
        add_flags(parser.add_argument_group(f"{model} options"), model_class(model)())
    return parser


def _input_shape(text: str) -> tuple[int, int, int]:
    try:
        shape = tuple(int(part) for part in text.split(","))
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise JaxninError(f"--input-shape {text!r} is not H,W,C with positive integers, "
                          "e.g. --input-shape 224,224,1")
    return shape


if __name__ == "__main__":
    sys.exit(run_main(main))
