"""Two trainings of the same run compared: their states read back from the workdirs, equal up
to what float sums in another order allow."""
import jax
import numpy as np

from jaxnin.data.pipeline import to_device
from jaxnin.train.checkpoint import CheckpointStore
from jaxnin.train.factories import initial_state


def assert_trained_alike(got, want, start, within=0.1):
    """`got` and `want` moved from `start` alike: apart by at most `within` of how far `want`
    moved (global norms).

    Sums in another order (all-reduced gradients over 8 devices, a vmapped convolution over
    seeds) are about 1e-8 apart; where a ReLU or max-pool input lies that close to its kink,
    the step takes the other branch and the runs drift apart from then on. With dropout on,
    tests/test_sharding.py's tiny VGG met one in its second step for the run's key (none for
    keys 0-7; 1.5e-8 apart without dropout): 2.0 % of the movement after 6 steps, the largest
    difference 3.8e-4 on a bias (2026-12-01, 2-core CPU, jax 0.10.2). A real fault (other
    dropout masks or shuffles, a gradient not averaged) moves them apart by the order of the
    movement itself.
    """
    norm = lambda a, b: np.sqrt(sum(np.sum(np.square(np.subtract(x, y), dtype=np.float64))
                                    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))))
    moved, apart = norm(want, jax.device_get(start)), norm(got, want)
    assert apart <= within * moved, (apart, moved)


def fresh_state(config, data):
    state, _ = initial_state(config, data, to_device(data.train_images, data.train_labels, 8))
    return state


def latest_params(workdir, config, data):
    store = CheckpointStore(workdir / "checkpoints", config.best)
    state, _ = store.restore("latest", fresh_state(config, data))
    store.close()
    return jax.device_get(state.params)
