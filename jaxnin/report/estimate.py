"""How long a whole run will take, said before the time is paid.

The Console measures (step times, each epoch's record); the pure functions here turn those
numbers into seconds left and into the one `expected: ...` line a command prints. Nothing
here reads a clock or a device, except `Workload.of`, which asks JAX which device it is on.
"""
import dataclasses

# The GPU install as README.md's install section gives it (pyproject.toml's `cuda12` extra,
# which tests/test_estimate.py checks is still there).
GPU_INSTALL = 'pip install -e ".[cuda12]"'
# A run expected to take longer than this on a CPU names a cheaper way to run it.
SLOW_ON_CPU_S = 3600.0
# An evaluated example costs a forward pass, a trained one a forward and a backward pass
# (about twice the forward's work): until an evaluation has been timed, an evaluated example
# is guessed at this share of a trained one. The line says when it is such a guess.
EVAL_SHARE = 1 / 3
# The step time is measured from the first step reported (which waited for the compile), over
# MEASURE_STEPS steps, or fewer where they already took MEASURE_S seconds (a slow CPU step).
# The first steps after a compile run slow: over 3 steps, fashion_nin --cpu's line said 5 min
# an epoch on 2 cores, and its epochs took 3.7 (2026-12-07).
MEASURE_STEPS, MEASURE_S = 10, 20.0


@dataclasses.dataclass(frozen=True)
class Workload:
    """What a run does, as far as its time goes, and what it suggests where it is slow.

    `cpu_recipe` is a Recipe sized for a CPU (its `name` and `command` are quoted, never its
    values), or None where the run has none; `shorter` names the flags that shorten the run.
    """
    epochs: int  # the run's last epoch
    batch_size: int
    eval_examples: int  # examples one evaluation sees (the limited test split)
    platform: str  # JAX's: "cpu", "gpu", "tpu"
    device: str  # for the line: "cpu", "NVIDIA H100 80GB HBM3"
    cpu_recipe: object = None
    shorter: str = "fewer --epochs, or --limit-train"

    @classmethod
    def of(cls, config, eval_examples: int, **advice) -> "Workload":
        """The workload of `config` on this process's first device."""
        import jax

        device = jax.devices()[0]
        return cls(config.epochs, config.batch_size, eval_examples, device.platform,
                   device.device_kind, **advice)


@dataclasses.dataclass(frozen=True)
class EpochCost:
    """Seconds one epoch's training and its evaluation take; `measured`: both were timed
    (else the evaluation is guessed from the training step)."""
    train_s: float
    eval_s: float
    measured: bool


def step_seconds(first: tuple[float, int], now: tuple[float, int]) -> float | None:
    """Seconds a training step takes, from (clock, steps done) at the first report of an
    epoch and now; None until enough steps are in (see MEASURE_STEPS)."""
    (start, done_then), (end, done_now) = first, now
    steps = done_now - done_then
    if steps >= MEASURE_STEPS or (steps >= 1 and end - start >= MEASURE_S):
        return (end - start) / steps
    return None


def cost_from_step(step_s: float, steps: int, work: Workload) -> EpochCost:
    """An epoch of `steps` steps of `step_s`, its evaluation guessed from the step."""
    per_example = step_s / work.batch_size
    return EpochCost(step_s * steps, work.eval_examples * per_example * EVAL_SHARE, False)


def cost_from_record(record: dict) -> EpochCost:
    """An epoch as a finished one took (compiles excluded: its record keeps them apart)."""
    return EpochCost(record["train_time_s"], record["eval_time_s"], True)


def seconds_left(cost: EpochCost, epochs_after: int, share_trained: float | None = None) -> float:
    """Seconds until the run ends: the rest of the epoch in progress (`share_trained` of its
    training done, its evaluation still to come; None: none in progress), then
    `epochs_after` whole epochs."""
    now = 0.0 if share_trained is None else (1 - share_trained) * cost.train_s + cost.eval_s
    return now + epochs_after * (cost.train_s + cost.eval_s)


def expected_line(total_s: float, first_epoch: int, work: Workload, cost: EpochCost) -> str:
    """The one line a command prints once the step time is known: the whole run's time on
    this device, and, where that is over an hour on a CPU, a cheaper way to run it."""
    count = work.epochs - first_epoch + 1
    epochs = f"{count} epoch{'s' if count != 1 else ''}" + (
        f" (epochs {first_epoch}-{work.epochs})" if first_epoch > 1 else "")
    basis = ("as the last epoch took" if cost.measured
             else "from the training steps, the evaluation guessed from them")
    line = (f"expected: about {duration_text(total_s)} for {epochs} on {work.device} "
            f"({duration_text(cost.train_s + cost.eval_s)} an epoch, {basis})")
    if work.platform == "cpu" and total_s > SLOW_ON_CPU_S:
        line += "; over an hour on a CPU: " + slow_cpu_advice(work)
    return line


def slow_cpu_advice(work: Workload) -> str:
    """What to run instead: the CPU-sized recipe where there is one, else a shorter run; or
    a GPU. No time is given for the CPU recipe: from this run's steps it would be a guess."""
    gpu = f"or a GPU: {GPU_INSTALL}"
    if work.cpu_recipe is not None:
        return (f"try the recipe sized for one, {work.cpu_recipe.name}: "
                f"{work.cpu_recipe.command}, {gpu}")
    return f"shorten it ({work.shorter}), {gpu}"


def duration_text(seconds: float) -> str:
    """'42 s', '25 min', '11 h 5 min': a duration as a person reads it."""
    if seconds < 90:
        return f"{seconds:.0f} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60} min"


def clock_text(seconds: float) -> str:
    """'10:42:00': hours, minutes and seconds, as the bar shows its own times."""
    whole = round(seconds)
    return f"{whole // 3600}:{whole // 60 % 60:02d}:{whole % 60:02d}"
