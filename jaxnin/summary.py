"""`python -m jaxnin.summary MODEL`: print a model's per-layer shapes, params and FLOPs."""
import sys

from jaxnin.cli import ArgumentParser, run_main
from jaxnin.errors import JaxninError
from jaxnin.models import DEFAULT_INPUT_SHAPES, MODELS, create_model
from jaxnin.report.summary import summarize


def main(argv) -> int:
    args = _parser().parse_args(argv)
    shape = _input_shape(args.input_shape) if args.input_shape else DEFAULT_INPUT_SHAPES[args.model]
    options = {k: v for k, v in (("num_1x1", args.num_1x1), ("head", args.head),
                                 ("width_divisor", args.width_divisor)) if v is not None}
    model = create_model(args.model, num_classes=args.num_classes, **options)
    print(f"{args.model} for input {shape}, {args.num_classes} classes")
    print(summarize(model, shape).table())
    return 0


def _parser():
    parser = ArgumentParser(prog="python -m jaxnin.summary", description=__doc__)
    parser.add_argument("model", choices=sorted(MODELS))
    parser.add_argument("--input-shape", help="H,W,C of one example (default: the recipe's)")
    parser.add_argument("--num-classes", type=int, default=10)
    parser.add_argument("--num-1x1", type=int, help="NiN: 1x1 convs per block (default 2)")
    parser.add_argument("--head", choices=["direct", "graded"], help="NiN: last block's widths")
    parser.add_argument("--width-divisor", type=int, help="VGG: divide conv channels by this")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
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
