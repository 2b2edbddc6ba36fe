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
