"""jaxnin: classic CNNs (NiN, VGG, LeNet-5) and their d2l experiments in pure-functional JAX.

Research code imports everything it needs from here:

    import jaxnin
    config = jaxnin.recipe("mnist_lenet.tuned").replace(epochs=3, limit_train=4096)
    run = jaxnin.fit(config, workdir="runs/lenet")        # silent; returns a Run
    run = jaxnin.load_run("runs/lenet")                    # later, or elsewhere
    jaxnin.evaluate(run, "test")                           # {"loss", "acc", "count", ...}

and the pieces to write a loop of its own: create_model, create_train_state, train_step,
eval_step, make_optimizer, learning_rate_schedule, NiNBlock. `jaxnin.RECIPES` lists the
recipes; `python -m jaxnin` lists their commands.
"""
import importlib

from jaxnin import guard as _guard

_guard.install_early()  # `python -m jaxnin...`: signals obeyed from the first import on

__version__ = "0.1.0"

# name -> module; imported on first use so `import jaxnin` stays light for command lines.
_EXPORTS = {
    "JaxninError": "jaxnin.errors",
    "RECIPES": "jaxnin.recipes",
    "recipe": "jaxnin.recipes",
    "TrainConfig": "jaxnin.train.config",
    "ImageDataset": "jaxnin.data.dataset",
    "load_data": "jaxnin.data",
    "load_dataset": "jaxnin.data.vision",
    "fit": "jaxnin.run",
    "Run": "jaxnin.runs",
    "load_run": "jaxnin.runs",
    "evaluate": "jaxnin.runs",
    "predict": "jaxnin.runs",
    "create_model": "jaxnin.models",
    "NiN": "jaxnin.models",
    "NiNBlock": "jaxnin.models",
    "VGG": "jaxnin.models",
    "LeNet5": "jaxnin.models",
    "MaxPool": "jaxnin.models.layers",
    "GlobalAvgPool": "jaxnin.models.layers",
    "summarize": "jaxnin.report.summary",
    "TrainState": "jaxnin.train.steps",
    "create_train_state": "jaxnin.train.steps",
    "train_step": "jaxnin.train.steps",
    "eval_step": "jaxnin.train.steps",
    "train_epoch": "jaxnin.train.steps",
    "evaluate_split": "jaxnin.train.steps",
    "mean_metrics": "jaxnin.train.steps",
    "learning_rate_schedule": "jaxnin.train.optim",
    "make_optimizer": "jaxnin.train.optim",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxnin' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)


def __dir__():
    return sorted({*globals(), *_EXPORTS})
