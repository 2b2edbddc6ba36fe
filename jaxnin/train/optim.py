"""Optimizers and learning-rate schedules, with PyTorch's semantics converted to optax steps."""
import optax

from jaxnin.errors import JaxninError

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "step", "cosine")


def learning_rate_schedule(name: str, lr: float, steps_per_epoch: int, epochs: int,
                           step_size: int = 10, gamma: float = 0.1) -> optax.Schedule:
    """The lr at each optimizer step.

    Args:
      name: "constant"; "step" is PyTorch's StepLR stepped once per epoch (lr x gamma every
        `step_size` epochs); "cosine" is CosineAnnealingLR to 0 over all steps, per step.
      steps_per_epoch: optimizer steps in one epoch, to turn epochs into steps.
    """
    if name == "constant":
        return optax.constant_schedule(lr)
    if name == "step":
        # StepLR: epoch e trains at lr * gamma ** (e // step_size); step t is in epoch t // spe.
        return optax.exponential_decay(lr, transition_steps=step_size * steps_per_epoch,
                                       decay_rate=gamma, staircase=True)
    if name == "cosine":
        return optax.cosine_decay_schedule(lr, decay_steps=max(1, epochs * steps_per_epoch))
    raise JaxninError(f"unknown --schedule {name!r}: choose one of {', '.join(SCHEDULES)}")


def make_optimizer(name: str, schedule: optax.Schedule,
                   momentum: float = 0.9) -> optax.GradientTransformation:
    """torch.optim.SGD (optionally with momentum) or Adam with PyTorch's defaults."""
    if name == "sgd":
        return optax.sgd(schedule)
    if name == "momentum":
        # optax's trace t = momentum * t + g, update -lr * t is torch's SGD(momentum, dampening=0).
        return optax.sgd(schedule, momentum=momentum)
    if name == "adam":
        return optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)
    raise JaxninError(f"unknown --optimizer {name!r}: choose one of {', '.join(OPTIMIZERS)}")
