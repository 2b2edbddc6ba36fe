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

from jaxnin.data import video
from jaxnin.experiments.fashion_nin import add_model_flags, model_options  # the NiN flags
from jaxnin.experiments.recipe import Recipe
from jaxnin.train.config import TrainConfig

DATA_DEFAULTS = {"frames": video.DEFAULT_FRAMES, "size": video.DEFAULT_SIZE,
                 "test_ratio": video.DEFAULT_TEST_RATIO, "split_seed": video.DEFAULT_SPLIT_SEED}
DEFAULTS = TrainConfig(model="nin", dataset=video.NAME, optimizer="sgd", lr=0.001, epochs=300,
                       batch_size=32, resize=224, best=("best_loss",),
                       data_options=DATA_DEFAULTS)


def run_name(config: TrainConfig, in_channels: int, num_classes: int) -> str:
    """The seed's save folder: NiN_input_channels{F}_output_channels{C}_lr{lr}_epochs{E}."""
    return (f"NiN_input_channels{in_channels}_output_channels{num_classes}_lr{config.lr}"
            f"_epochs{config.epochs}")


def add_data_flags(parser) -> None:
    # Same destination as the shared --data-dir, which stays as an alias.
    parser.add_argument("--clips-dir", dest="data_dir", help="folder of DIR/<label>/<clip> "
                        "(default: the sample clips, written once into the cache)")
    parser.add_argument("--frames", type=int, help="frames sampled uniformly from each clip, "
                        f"stacked as channels [{video.DEFAULT_FRAMES}]")
    parser.add_argument("--size", type=int, help="side each frame is resized to when decoded "
                        f"and cached (then --resize on the device; 0 keeps this) "
                        f"[{video.DEFAULT_SIZE}]")
    parser.add_argument("--test-ratio", type=float, help="share of each class held out for "
                        "testing when DIR has no train/ and test/ folders "
                        f"[{video.DEFAULT_TEST_RATIO}]")
    parser.add_argument("--split-seed", type=int, help="seeds that split and the clips' order "
                        f"[{video.DEFAULT_SPLIT_SEED}]")


def data_options(args) -> dict:
    given = {"frames": args.frames, "size": args.size, "test_ratio": args.test_ratio,
             "split_seed": args.split_seed}
    return {k: v for k, v in given.items() if v is not None}


RECIPE = Recipe(prog="jaxnin.experiments.video_nin", description=__doc__, defaults=DEFAULTS,
                run_name=run_name, add_model_flags=add_model_flags, model_options=model_options,
                add_data_flags=add_data_flags, data_options=data_options,
                data_dir_help="same as --clips-dir")

if __name__ == "__main__":
    sys.exit(RECIPE.main())
