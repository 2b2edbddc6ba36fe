"""jaxnin: classic CNNs (NiN, VGG, LeNet-5) and their d2l experiments in pure-functional JAX.

Research code imports the jitted pieces from here:

    from jaxnin import create_model, create_train_state, train_step, eval_step, fit
"""
import importlib

__version__ = "0.1.0"

# name -> module; imported on first use so `import jaxnin` stays light for CLIs like summary.
_EXPORTS = {
    "JaxninError": "jaxnin.errors",
    "create_model": "jaxnin.models",
    "load_dataset": "jaxnin.data.vision",
    "TrainConfig": "jaxnin.train.config",
    "fit": "jaxnin.run",
    "TrainState": "jaxnin.train.steps",
    "create_train_state": "jaxnin.train.steps",
    "train_step": "jaxnin.train.steps",
    "eval_step": "jaxnin.train.steps",
    "train_epoch": "jaxnin.train.steps",
    "evaluate": "jaxnin.train.steps",
    "learning_rate_schedule": "jaxnin.train.optim",
    "make_optimizer": "jaxnin.train.optim",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'jaxnin' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
