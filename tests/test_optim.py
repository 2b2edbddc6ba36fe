"""Learning rates per step, and optimizer updates with PyTorch's semantics."""
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnin.errors import JaxninError
from jaxnin.train.optim import learning_rate_schedule, make_optimizer


def test_step_lr_is_pytorch_steplr_per_epoch():
    """StepLR(step_size=10, gamma=0.1) at lr 1e-3 with 3,750 steps an epoch (seed 002)."""
    schedule = learning_rate_schedule("step", 1e-3, steps_per_epoch=3750, epochs=50,
                                      step_size=10, gamma=0.1)
    for step, lr in [(0, 1e-3), (3749, 1e-3), (37_499, 1e-3), (37_500, 1e-4), (74_999, 1e-4),
                     (75_000, 1e-5), (150_000, 1e-7), (187_499, 1e-7)]:
        assert float(schedule(step)) == pytest.approx(lr, rel=1e-6), step


def test_step_lr_matches_the_epoch_formula_everywhere():
    schedule = learning_rate_schedule("step", 0.1, steps_per_epoch=7, epochs=9, step_size=2,
                                      gamma=0.5)
    steps = np.arange(63)
    expected = 0.1 * 0.5 ** ((steps // 7) // 2)
    np.testing.assert_allclose([float(schedule(s)) for s in steps], expected, rtol=1e-6)


def test_constant_and_cosine():
    constant = learning_rate_schedule("constant", 0.1, 10, 5)
    assert [float(constant(s)) for s in (0, 49, 1000)] == pytest.approx([0.1] * 3)
    cosine = learning_rate_schedule("cosine", 0.1, steps_per_epoch=10, epochs=5)
    assert float(cosine(0)) == pytest.approx(0.1)
    assert float(cosine(25)) == pytest.approx(0.05, rel=1e-5)
    assert float(cosine(50)) == pytest.approx(0.0, abs=1e-9)


def test_sgd_update_uses_the_scheduled_lr_at_each_step():
    schedule = learning_rate_schedule("step", 0.2, steps_per_epoch=2, epochs=3, step_size=1,
                                      gamma=0.5)
    tx = make_optimizer("sgd", schedule)
    params = {"w": jnp.zeros(3)}
    state = tx.init(params)
    grads = {"w": jnp.ones(3)}
    for lr in [0.2, 0.2, 0.1, 0.1, 0.05]:
        updates, state = tx.update(grads, state, params)
        np.testing.assert_allclose(updates["w"], -lr, rtol=1e-6)


def test_momentum_is_torch_sgd_momentum():
    """torch: v = m v + g; p -= lr v (dampening 0, no nesterov)."""
    tx = make_optimizer("momentum", optax.constant_schedule(0.1), momentum=0.9)
    params = jnp.zeros(2)
    state = tx.init(params)
    for grad, expected in [(1.0, -0.1), (1.0, -0.19), (0.0, -0.171)]:
        updates, state = tx.update(jnp.full(2, grad), state, params)
        np.testing.assert_allclose(updates, expected, rtol=1e-6)


def test_adam_first_step_is_lr_times_sign():
    tx = make_optimizer("adam", optax.constant_schedule(1e-3))
    updates, _ = tx.update(jnp.array([3.0, -0.5]), tx.init(jnp.zeros(2)), jnp.zeros(2))
    np.testing.assert_allclose(updates, [-1e-3, 1e-3], rtol=1e-4)


def test_unknown_names_are_one_line_errors():
    with pytest.raises(JaxninError, match="unknown --schedule"):
        learning_rate_schedule("linear", 0.1, 1, 1)
    with pytest.raises(JaxninError, match="unknown --optimizer"):
        make_optimizer("rmsprop", optax.constant_schedule(0.1))
