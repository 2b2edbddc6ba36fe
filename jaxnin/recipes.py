"""The seed experiments as values: every recipe and variant is a TrainConfig with a name.

    import jaxnin
    config = jaxnin.recipe("mnist_lenet.tuned").replace(epochs=3, limit_train=4096)
    run = jaxnin.fit(config, workdir="runs/lenet")

`RECIPES` maps each name to a `Recipe` (its config, what it is for, and the command that runs
it); the command-line modules (`python -m jaxnin.experiments.<name>`) are made from these same
values, and `python -m jaxnin` lists them. A variant's name is `<recipe>.<variant>`; its CLI
flag is `--<variant>` on the recipe's command (the ablation's settings are run by its own).
"""
import dataclasses
from typing import Mapping

from jaxnin.data import video
from jaxnin.errors import JaxninError
from jaxnin.train.config import TrainConfig


@dataclasses.dataclass(frozen=True)
class Recipe:
    """A named config: `config` is what it trains, `purpose` one line on why, `command` the
    command line that runs it."""
    name: str
    purpose: str
    config: TrainConfig
    command: str


def _config(model, dataset, *, epochs, batch_size, optimizer, lr, resize, cpu_convolutions,
            momentum=0.9, schedule="constant", step_size=10, gamma=0.1, best=("best_loss",),
            model_options=None, data_options=None) -> TrainConfig:
    """A recipe's config with every field a recipe sets given, so none is looked up here."""
    return TrainConfig(model=model, dataset=dataset, epochs=epochs, batch_size=batch_size,
                       optimizer=optimizer, lr=lr, momentum=momentum, schedule=schedule,
                       step_size=step_size, gamma=gamma, resize=resize, best=best,
                       cpu_convolutions=cpu_convolutions, model_options=model_options or {},
                       data_options=data_options or {})


# Seed 001: d2l's NiN on Fashion-MNIST at 224, plain SGD at lr 0.1, batch 128, 10 epochs.
FASHION_NIN = _config("nin", "fashion_mnist", epochs=10, batch_size=128, optimizer="sgd",
                      lr=0.1, resize=224, cpu_convolutions="eigen")
# Seed 002 as its code runs: it creates StepLR(step_size=10, gamma=0.1) but never steps it,
# so the lr is constant; step_size and gamma are that StepLR's, used by the steplr variant.
MNIST_LENET = _config("lenet", "mnist", epochs=50, batch_size=16, optimizer="momentum",
                      lr=1e-3, momentum=0.9, resize=None, best=("best_loss", "best_acc"),
                      cpu_convolutions="ynnpack")
FASHION_VGG = _config("vgg11", "fashion_mnist", epochs=3, batch_size=128, optimizer="adam",
                      lr=1e-3, resize=224, model_options={"dropout": 0.0},
                      cpu_convolutions="eigen")
VIDEO_NIN = _config("nin", video.NAME, epochs=300, batch_size=32, optimizer="sgd", lr=0.001,
                    resize=224, data_options=dataclasses.asdict(video.ClipOptions()),
                    cpu_convolutions="eigen")

_MODULE = "python -m jaxnin.experiments."
_ABLATION = {  # seed 003's forum questions, each a change of seed 001's recipe
    "a2": ("seed 001: two 1x1 convs, SGD 0.1, b128, 224, 10 ep", {}),
    "a1": ("one 1x1 conv per block", {"model_options": {"num_1x1": 1}}),
    "b": ("SGD lr 0.12, 15 epochs", {"lr": 0.12, "epochs": 15}),
    "c": ("Adam 1e-3, batch 512, resize 96",
          {"optimizer": "adam", "lr": 1e-3, "batch_size": 512, "resize": 96}),
    "d": ("Adam 2e-3, batch 1024, resize 96",
          {"optimizer": "adam", "lr": 2e-3, "batch_size": 1024, "resize": 96}),
    "e": ("graded last block 384→114→34→10 (a2 is the direct 384→10)",
          {"model_options": {"head": "graded"}}),
    **{f"f{lr:g}": (f"lr sweep: SGD lr {lr:g} (a2 is lr 0.1)", {"lr": lr})
       for lr in (0.02, 0.05, 0.2, 0.3)},
}

RECIPES: Mapping[str, Recipe] = {recipe.name: recipe for recipe in (
    Recipe("fashion_nin", "seed 001, the main job: d2l's NiN on Fashion-MNIST at 224, SGD lr "
           "0.1, batch 128, 10 epochs (a GPU job)", FASHION_NIN, _MODULE + "fashion_nin"),
    Recipe("fashion_nin.cpu", "seed 001 sized for a CPU: NiN at 67x67 with a linear last block, "
           "Adam lr 1e-3 on a cosine, batch 128, 3 epochs (minutes on 2 cores, not hours)",
           FASHION_NIN.replace(resize=67, epochs=3, optimizer="adam", lr=1e-3,
                               schedule="cosine", model_options={"linear_logits": True}),
           _MODULE + "fashion_nin --cpu"),
    Recipe("mnist_lenet", "seed 002 as its code runs: sigmoid LeNet-5 on MNIST, SGD lr 1e-3 "
           "momentum 0.9, batch 16, 50 epochs at a constant lr", MNIST_LENET,
           _MODULE + "mnist_lenet"),
    Recipe("mnist_lenet.steplr", "seed 002 as meant: the same with StepLR(10, 0.1) stepped each "
           "epoch (lr 1e-3 to 1e-7 by epoch 40)", MNIST_LENET.replace(schedule="step"),
           _MODULE + "mnist_lenet --steplr"),
    Recipe("mnist_lenet.tuned", "ReLU LeNet-5 with activations after conv3 and fc1, Adam lr "
           "2e-3, batch 64, cosine, 20 epochs (0.9921 in its one recorded run)",
           MNIST_LENET.replace(epochs=20, batch_size=64, optimizer="adam", lr=2e-3,
                               schedule="cosine", model_options={
                                   "activation": "relu", "dense_activations": True}),
           _MODULE + "mnist_lenet --tuned"),
    Recipe("fashion_vgg", "seed 004: VGG-11 on Fashion-MNIST at 224, Adam lr 1e-3, batch 128, "
           "3 epochs, the seed's head without dropout", FASHION_VGG, _MODULE + "fashion_vgg"),
    Recipe("video_nin", "seed 000: NiN on sign-language clips, the frames stacked as input "
           "channels, SGD lr 1e-3, 300 epochs", VIDEO_NIN, _MODULE + "video_nin"),
    *(Recipe(f"nin_ablation.{key}", f"seed 003's question: {label}",
             FASHION_NIN.replace(**changes), _MODULE + f"nin_ablation --variants {key}")
      for key, (label, changes) in _ABLATION.items()),
)}

# The recipe a config built for a model (and a dataset) starts from: its seed's own.
_HOME = {("nin", "fashion_mnist"): "fashion_nin", ("nin", video.NAME): "video_nin",
         ("nin", None): "fashion_nin", ("lenet", None): "mnist_lenet",
         **{(f"vgg{depth}", None): "fashion_vgg" for depth in (11, 13, 16, 19)}}


def recipe(name: str) -> TrainConfig:
    """The config of recipe `name` (a key of RECIPES, e.g. "fashion_nin", "mnist_lenet.tuned").

    It is a frozen value: change it with `.replace(field=value, ...)`.
    """
    if name not in RECIPES:
        raise JaxninError(f"unknown recipe {name!r}: choose one of {', '.join(RECIPES)}")
    return RECIPES[name].config


def recipe_for(model: str, dataset: str | None = None) -> TrainConfig:
    """The recipe a config of `model` (on `dataset`) takes the fields it was not given from:
    the model's seed recipe, for that dataset where there is one, with `model` and `dataset`
    as asked."""
    name = _HOME.get((model, dataset)) or _HOME[(model, None)]
    base = RECIPES[name].config
    return base.replace(model=model, dataset=dataset or base.dataset)
