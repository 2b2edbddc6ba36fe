"""Faults injected into a real run, for the tests of what jaxnin does when things go wrong."""
import math

from jaxnin.train import loop


def diverging_in(epoch: int, monkeypatch) -> None:
    """Make the engine's epoch `epoch` end with a NaN train loss (all else real)."""
    real = loop.run_epoch
    done = []

    def run_epoch(*args, **kwargs):
        state, record = real(*args, **kwargs)
        done.append(1)
        return state, {**record, "train_loss": math.nan} if len(done) == epoch else record

    monkeypatch.setattr(loop, "run_epoch", run_epoch)


def one_error_line(returncode, stderr, *needles):
    """Exit code 2 and exactly one line on stderr, holding every needle, no traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert returncode == 2, stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]
