"""Seed 002's test demo for any finished run: load its best checkpoint and predict.

    python -m jaxnin.experiments.predict RUN_DIR [--count 20] [--data-dir DIR]

Prints `predicted: "X", actual: "Y"` for the first N test images, with class names, and writes
RUN_DIR/predictions.png: the images titled with both labels, wrong predictions in red.

--out FILE writes the grid there instead, in the format its suffix names (.png, .pdf, .svg,
.jpg, ...: whatever matplotlib writes here); a FILE with no suffix is written as PNG under
exactly that name. A folder, or a suffix matplotlib cannot write, is refused before any work.
"""
import dataclasses
import os
import sys
from pathlib import Path

import numpy as np

from jaxnin.cli import RunOptions, add_run_flags, command_parser, options_from, run_main
from jaxnin.errors import JaxninError
from jaxnin.options import COUNT, option
from jaxnin.report.plots import image_formats, prediction_grid
from jaxnin.runs import load_run, predict

# Seed 002 reloads the best-accuracy model; runs that only track loss fall back to it.
CHECKPOINT_PREFERENCE = ("best_acc", "best_loss", "latest")
# The grid stays a readable picture (and a small file): every line is printed, at most this
# many images are drawn.
GRID_MAX = 100


@dataclasses.dataclass(frozen=True)
class PredictOptions(RunOptions):
    """predict's options, beside RUN_DIR."""
    count: int = option(20, f"how many test images to predict and print (at most {GRID_MAX} "
                        "are drawn)", within=COUNT)
    out: str | None = option(None, "the grid's file, its format by its suffix (PNG where it "
                             "has none; a folder is refused) [RUN_DIR/predictions.png]",
                             path=True)


def main(argv) -> int:
    args = _parser().parse_args(argv)
    options = options_from(PredictOptions, args)
    out = Path(options.out) if options.out else Path(args.run_dir) / "predictions.png"
    image_format = _format_of(out)  # before any work: a grid that cannot be written is not made
    run = load_run(args.run_dir, options.seed, options.data_dir)
    if not out.parent.is_dir():  # said before predicting, not after
        _cannot_write(out, f"{out.parent} is not a folder")
    if not os.access(out.parent, os.W_OK | os.X_OK):
        _cannot_write(out, f"{out.parent} is not writable")
    kind = next(k for k in CHECKPOINT_PREFERENCE if k in ("latest", *run.config.best))
    restored = run.restored(kind)
    data = run.dataset()
    count = min(options.count, len(data.test_labels))
    images, actual = data.test_images[:count], data.test_labels[:count]
    predicted = predict(restored.state, images, run.config.resize, run.config.eval_batch_size)
    print(f"{args.run_dir}: {kind} checkpoint from epoch {restored.epoch}")
    for pred, true in zip(predicted, actual):
        print(f'predicted: "{run.class_names[pred]}", actual: "{run.class_names[true]}"')
    drawn = min(count, GRID_MAX)
    try:
        prediction_grid(images[:drawn], predicted[:drawn], actual[:drawn], run.class_names, out,
                        format=image_format)
    except OSError as err:
        _cannot_write(out, err.strerror or str(err))
    shown = f"the first {drawn} drawn" if drawn < count else "grid"
    as_png = "" if out.suffix else " (as PNG: the name has no suffix)"
    print(f"{int(np.sum(predicted == actual))}/{count} right; {shown} written to {out}{as_png}")
    return 0


def _format_of(out: Path) -> str:
    """The image format `out` is written in: its suffix's, PNG without one; a JaxninError for
    a folder or a suffix matplotlib cannot write (it would fail after the predictions, or
    write somewhere else: `DIR.png` beside a folder)."""
    if out.is_dir():
        raise JaxninError(f"--out {out} is a folder: name the file to write, e.g. "
                          f"--out {out / 'predictions.png'}")
    suffix = out.suffix[1:].lower()
    if not suffix:
        return "png"
    formats = image_formats()
    if suffix not in formats:
        raise JaxninError(f"--out {out}: matplotlib cannot write .{suffix} files here; end the "
                          f"name in one of {', '.join('.' + f for f in sorted(formats))}")
    return suffix


def _cannot_write(out: Path, why: str):
    raise JaxninError(f"cannot write {out} ({why}): choose another --out")


def _parser():
    parser = command_parser("python -m jaxnin.experiments.predict", __doc__)
    add_run_flags(parser, PredictOptions())
    return parser


if __name__ == "__main__":
    sys.exit(run_main(main))
