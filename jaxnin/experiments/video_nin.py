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
import dataclasses
import sys

from jaxnin.data import video
from jaxnin.experiments.fashion_nin import NiNOptions
from jaxnin.experiments.recipe import Recipe
from jaxnin.train.config import TrainConfig, option


@dataclasses.dataclass(frozen=True)
class ClipOptions:
    """How clips become frame stacks (jaxnin.data.video.load_clips' options)."""
    frames: int = option(video.DEFAULT_FRAMES, "frames sampled uniformly from each clip, "
                         "stacked as channels")
    size: int = option(video.DEFAULT_SIZE, "side each frame is resized to when decoded and "
                       "cached (then --resize on the device; 0 keeps this)")
    test_ratio: float = option(video.DEFAULT_TEST_RATIO, "share of each class held out for "
                               "testing when DIR has no train/ and test/ folders")
    split_seed: int = option(video.DEFAULT_SPLIT_SEED, "seeds that split and the clips' order")


DATA_DEFAULTS = dataclasses.asdict(ClipOptions())
DEFAULTS = TrainConfig(model="nin", dataset=video.NAME, optimizer="sgd", lr=0.001, epochs=300,
                       batch_size=32, resize=224, best=("best_loss",),
                       data_options=DATA_DEFAULTS)


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    """The seed's save folder: NiN_input_channels{F}_output_channels{C}_lr{lr}_epochs{E}."""
    return (f"NiN_input_channels{in_channels}_output_channels{num_classes}_lr{config.lr}"
            f"_epochs{config.epochs}")


RECIPE = Recipe(prog="jaxnin.experiments.video_nin", description=__doc__, defaults=DEFAULTS,
                run_name=run_name, model_flags=NiNOptions, data_flags=ClipOptions,
                help_overrides={"data_dir": "folder of DIR/<label>/<clip> (default: the sample "
                                "clips, written once into the cache)"},
                aliases={"data_dir": ("--clips-dir",)})

if __name__ == "__main__":
    sys.exit(RECIPE.main())
