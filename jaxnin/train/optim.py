"""Optimizers and learning-rate schedules, with PyTorch's semantics converted to optax steps."""
import math

import jax.numpy as jnp
import numpy as np
import optax

from jaxnin.errors import JaxninError

OPTIMIZERS = ("sgd", "momentum", "adam")
SCHEDULES = ("constant", "step", "cosine")


def _clip_checks(clip_norm: float | None) -> list[tuple[bool, str]]:
    # A norm of 0 zeroes every update, NaN or inf clips nothing or everything.
    return [(clip_norm is None or (math.isfinite(clip_norm) and clip_norm > 0),
             f"`clip_norm` must be a finite positive number, got {clip_norm}")]


def _momentum_checks(momentum: float) -> list[tuple[bool, str]]:
    # momentum >= 1 makes the trace sum grow without bound (torch's SGD diverges too).
    return [(0 <= momentum < 1, f"`momentum` must be in [0, 1), got {momentum}")]


def gamma_advice(schedule: str, gamma: float, step_size: int, epochs: int) -> str:
    """What to do instead of a `gamma` of 0 where it would waste epochs ("" elsewhere): torch
    would run it, lr 0 after the first decay, so every epoch after it is wasted."""
    if gamma == 0 and schedule == "step" and epochs > step_size:
        return f": 0 would stop learning after epoch {step_size}; set `epochs` {step_size} instead"
    return ""


def _schedule_checks(schedule: str, lr: float, step_size: int, gamma: float,
                     epochs: int) -> list[tuple[bool, str]]:
    # gamma > 1 grows the lr and gamma < 0 flips the step's sign (gradient ascent).
    stop = gamma_advice(schedule, gamma, step_size, epochs)
    return [
        (schedule in SCHEDULES,
         f"unknown `schedule` {schedule!r}: choose one of {', '.join(SCHEDULES)}"),
        # `lr > 0` alone would pass inf; isfinite refuses NaN and inf alike.
        (math.isfinite(lr) and lr > 0, f"`lr` must be a finite positive number, got {lr}"),
        (step_size >= 1, f"`step_size` must be at least 1 epoch, got {step_size}"),
        (0 < gamma <= 1, f"`gamma` must be in (0, 1], got {gamma}{stop}"),
    ]


def _refuse_first(checks: list[tuple[bool, str]]) -> None:
    for ok, message in checks:
        if not ok:
            raise JaxninError(message)


def learning_rate_schedule(name: str, lr: float, steps_per_epoch: int, epochs: int,
                           step_size: int = 10, gamma: float = 0.1) -> optax.Schedule:
    """The lr at each optimizer step.

    Args:
      name: "constant"; "step" is PyTorch's StepLR stepped once per epoch (lr x gamma every
        `step_size` epochs); "cosine" is CosineAnnealingLR to 0 over all steps, per step.
      steps_per_epoch: optimizer steps in one epoch, to turn epochs into steps.
      epochs: the schedule's horizon; only cosine's values depend on it (see
        `schedule_horizon_epochs`).
    """
    _refuse_first(_schedule_checks(name, lr, step_size, gamma, epochs))
    if name == "constant":
        return optax.constant_schedule(lr)
    if name == "step":
        return step_lr_schedule(lr, steps_per_epoch, epochs, step_size, gamma)
    return optax.cosine_decay_schedule(lr, decay_steps=max(1, epochs * steps_per_epoch))


def with_warmup(schedule: optax.Schedule, warmup_steps: int) -> optax.Schedule:
    """`schedule` scaled by min(1, (t + 1) / N) at step t: torch's
    LambdaLR(lambda t: min(1, (t + 1) / N)) stepped after every optimizer step, on top of the
    schedule, so a StepLR keeps its epochs and the lr from step N - 1 on is the schedule's bit
    for bit. Step 0 trains at lr / N; N = 0 is no warm-up.
    """
    if warmup_steps == 0:
        return schedule

    def warmed(count):
        return schedule(count) * jnp.minimum(1.0, (jnp.asarray(count) + 1) / warmup_steps)
    return warmed


def step_lr_schedule(lr: float, steps_per_epoch: int, epochs: int, step_size: int,
                     gamma: float) -> optax.Schedule:
    """StepLR per epoch, looked up per step: step t is in epoch t // steps_per_epoch.

    The epoch is an exact integer floor division. Dividing in float32 (as optax's staircase
    exponential_decay does) lets XLA multiply by a rounded reciprocal, which puts the first
    step of some decayed epochs in the epoch before. Steps after `epochs` keep the last lr.
    """
    rates = jnp.asarray(step_lr_per_epoch(lr, epochs, step_size, gamma))

    def schedule(count):
        epoch = jnp.minimum(jnp.asarray(count) // steps_per_epoch, epochs)
        return jnp.take(rates, epoch, mode="clip")
    return schedule


def step_lr_per_epoch(lr: float, epochs: int, step_size: int, gamma: float) -> np.ndarray:
    """The lr of epochs 0..epochs as torch's StepLR sets it, rounded once to float32.

    torch keeps the lr as a Python float and multiplies it by gamma at each decay, so epoch e's
    lr is lr*gamma*gamma... in float64; its float32 kernels then use that value rounded to
    float32. A float32 lr * gamma ** k could differ from that in the last bit.
    """
    rates = [lr]
    for epoch in range(1, epochs + 1):
        rates.append(rates[-1] * gamma if epoch % step_size == 0 else rates[-1])
    return np.asarray(rates, np.float32)


def schedule_horizon_epochs(name: str, epochs: int) -> int | None:
    """The epochs a schedule's values depend on, or None where the lr at step t is the same
    for every run length (constant, step). A resume must keep the horizon it started with."""
    return epochs if name == "cosine" else None


def check_resume_epochs(name: str, started_epochs: int, epochs: int) -> None:
    """Refuse, in one line, more `epochs` on resume where that would change the schedule's lr."""
    if schedule_horizon_epochs(name, started_epochs) not in (None, epochs):
        raise JaxninError(
            f"`epochs` {epochs} on resume: the run's {name} schedule decays over its "
            f"{started_epochs} epochs, and a new length would change the lr of every step "
            f"(it would jump back up); resume with `epochs` {started_epochs}, or start a new "
            f"run in another `workdir`")


def make_optimizer(name: str, schedule: optax.Schedule, momentum: float = 0.9,
                   clip_norm: float | None = None) -> optax.GradientTransformation:
    """torch.optim.SGD (optionally with momentum) or Adam with PyTorch's defaults.

    With `clip_norm`, each step's gradients are first scaled to a global L2 norm of at most
    `clip_norm`, as torch.nn.utils.clip_grad_norm_ before optimizer.step() (torch divides by
    the norm + 1e-6, optax by the norm: the same to float32 rounding above the threshold).
    """
    _refuse_first(_clip_checks(clip_norm))
    optimizer = _torch_optimizer(name, schedule, momentum)
    if clip_norm is None:  # the optimizer state keeps its shape, and old checkpoints restore
        return optimizer
    return optax.chain(optax.clip_by_global_norm(clip_norm), optimizer)


def _torch_optimizer(name: str, schedule: optax.Schedule,
                     momentum: float) -> optax.GradientTransformation:
    if name == "sgd":
        return optax.sgd(schedule)
    if name == "momentum":
        _refuse_first(_momentum_checks(momentum))
        # optax's trace t = momentum * t + g, update -lr * t is torch's SGD(momentum, dampening=0).
        return optax.sgd(schedule, momentum=momentum)
    if name == "adam":
        return optax.adam(schedule, b1=0.9, b2=0.999, eps=1e-8)
    raise JaxninError(f"unknown `optimizer` {name!r}: choose one of {', '.join(OPTIMIZERS)}")
