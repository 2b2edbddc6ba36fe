"""Seed 000: NiN on sign-language video, the frames of a clip stacked as input channels.

    python -m jaxnin.experiments.video_nin [--clips-dir DIR] [--frames F] [--size S] [flags]

DIR holds DIR/<label>/<clip> (or DIR/train/<label>/... and DIR/test/<label>/...), a clip
being a .npy/.npz array, a folder of frame images or a video file (mp4, avi, webm, ...).
Without --clips-dir the sample clips (eight motion patterns, jaxnin.data.make_sample_clips)
are written once into the cache and used.

Defaults are the seed's: NiN with in_channels = frames and out = the number of labels,
xavier-uniform weights, plain SGD at lr 0.001 (the seed found that 0.01 makes the loss NaN;
jaxnin then stops with one line and keeps the best checkpoint), 300 epochs, the best-test-loss
checkpoint, and a workdir named as the seed names it. What the seed does not show is jaxnin's
choice: 16 frames, decoded at 112x112 and resized to 224 on the device (the 001 net's input
size), batch 32, a 20 % test split per class. experiments/video_nin/ records a quick CPU run.
"""
import sys

from jaxnin.data.video import ClipOptions
from jaxnin.experiments.recipe import command_of
from jaxnin.recipes import recipe
from jaxnin.train.config import TrainConfig

DEFAULTS = recipe("video_nin")


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    """The seed's save folder: NiN_input_channels{F}_output_channels{C}_lr{lr}_epochs{E}."""
    return (f"NiN_input_channels{in_channels}_output_channels{num_classes}_lr{config.lr}"
            f"_epochs{config.epochs}")


RECIPE = command_of("video_nin", description=__doc__, run_name=run_name, data_flags=ClipOptions,
                    shown=("lr", "epochs", "frames"),  # the frames are the input channels
                    help_overrides={"data_dir": "folder of DIR/<label>/<clip> (default: the "
                                    "sample clips, written once into the cache)"},
                    aliases={"data_dir": ("--clips-dir",)})

if __name__ == "__main__":
    sys.exit(RECIPE.main())
