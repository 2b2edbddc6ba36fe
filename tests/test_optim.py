"""Learning rates per step, and optimizer updates with PyTorch's semantics."""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnin.errors import JaxninError
from jaxnin.train.config import TrainConfig
from jaxnin.train.optim import (check_resume_epochs, learning_rate_schedule,
                                make_optimizer, schedule_horizon_epochs, with_warmup)


EPOCHS = 50  # seed 002's run length


def torch_steplr(lr: float, step_size: int, gamma: float, epochs: int) -> list[float]:
    """The lr of each epoch under torch.optim.lr_scheduler.StepLR, stepped after each epoch.

    Its step() uses get_lr(), the recursive form: when last_epoch is a positive multiple of
    step_size it multiplies the group's lr, a Python float, by gamma; otherwise it keeps it.
    """
    lrs, group_lr = [], lr
    for last_epoch in range(epochs):
        if last_epoch > 0 and last_epoch % step_size == 0:
            group_lr = group_lr * gamma
        lrs.append(group_lr)
    return lrs


def misplaced_by_a_float_reciprocal(steps_per_epoch: int, step_size: int = 10) -> bool:
    """Whether t / T, rewritten by XLA as t * float32(1 / T), puts a decay's first step t = k*T
    in the decay before (T = step_size * steps_per_epoch): what optax's staircase did."""
    period = step_size * steps_per_epoch
    firsts = np.arange(1, (EPOCHS - 1) // step_size + 1) * period
    return bool((np.floor(np.float32(firsts) * (np.float32(1) / np.float32(period)))
                 < firsts // period).any())


# Epoch lengths that ran a decayed epoch's first step at the previous lr before the fix
# (502 of 1..4,000; this predicate matched the old code's 112 failures in 1..1,000 exactly).
MISPLACED = [spe for spe in range(1, 4001) if misplaced_by_a_float_reciprocal(spe)]


def test_reference_is_torch_steplr():
    torch = pytest.importorskip("torch")  # not in CI: the reference stands in for it there
    for step_size, gamma in [(10, 0.1), (3, 0.3), (1, 0.7)]:
        optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size, gamma)
        lrs = []
        for _ in range(EPOCHS):
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        assert lrs == torch_steplr(1e-3, step_size, gamma, EPOCHS)


def test_step_lr_is_torch_at_every_step_for_every_epoch_length():
    """StepLR(10, 0.1) at lr 1e-3, all steps of 50 epochs, steps per epoch 1..4,000, jitted.

    Equal means bit for bit in float32: torch's update kernels use the float64 lr rounded to
    float32. The epoch length is traced (one compile, vmapped); the next test compiles it as a
    constant, as the train step does.
    """
    expected = jnp.asarray(np.float32(torch_steplr(1e-3, 10, 0.1, EPOCHS)))

    def mismatches(steps_per_epoch, width):
        schedule = learning_rate_schedule("step", 1e-3, steps_per_epoch, EPOCHS, 10, 0.1)
        # Step e * spe + j is step j of epoch e; past an epoch's end, its last step again.
        within = jnp.minimum(jnp.arange(width), steps_per_epoch - 1)
        steps = jnp.arange(EPOCHS)[:, None] * steps_per_epoch + within[None, :]
        return jnp.sum(schedule(steps) != expected[:, None])

    count = jax.jit(jax.vmap(mismatches, in_axes=(0, None)), static_argnums=1)
    for first in range(1, 4001, 500):  # blocks of similar lengths: little padding
        lengths = np.arange(first, first + 500)
        wrong = np.asarray(count(jnp.asarray(lengths, jnp.int32), int(lengths[-1])))
        assert not wrong.any(), f"wrong lr at some steps for steps per epoch {lengths[wrong > 0]}"


@pytest.mark.parametrize("steps_per_epoch", MISPLACED[:6] + [469, 3750])
def test_step_lr_compiled_with_a_constant_epoch_length(steps_per_epoch):
    """469: batch 128 keeping the last partial batch; 3750: seed 002 (batch 16)."""
    schedule = jax.jit(learning_rate_schedule("step", 1e-3, steps_per_epoch, EPOCHS, 10, 0.1))
    lrs = np.asarray(schedule(jnp.arange(EPOCHS * steps_per_epoch, dtype=jnp.int32)))
    expected = np.float32(torch_steplr(1e-3, 10, 0.1, EPOCHS))
    np.testing.assert_array_equal(lrs.reshape(EPOCHS, steps_per_epoch)[:, [0, -1]],
                                  np.stack([expected, expected], 1))  # first/last: which epoch
    np.testing.assert_array_equal(lrs, np.repeat(expected, steps_per_epoch))


@pytest.mark.parametrize("step_size, gamma", [(2, 0.5), (3, 0.3), (1, 0.7), (4, 1.0)])
def test_step_lr_other_decays_are_torch_bit_for_bit(step_size, gamma):
    schedule = jax.jit(learning_rate_schedule("step", 0.1, 7, EPOCHS, step_size, gamma))
    expected = np.repeat(np.float32(torch_steplr(0.1, step_size, gamma, EPOCHS)), 7)
    np.testing.assert_array_equal(schedule(jnp.arange(EPOCHS * 7)), expected)


def test_the_lr_after_the_last_epoch_is_the_last_epochs():
    schedule = learning_rate_schedule("step", 0.1, 7, 5, step_size=2, gamma=0.5)
    assert float(schedule(5 * 7 - 1)) == float(schedule(10_000)) == np.float32(0.025)


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


def torch_warmup_factors(warmup_steps: int, steps: int) -> list[float]:
    """LambdaLR(lambda t: min(1, (t + 1) / N))'s factor at each step, stepped after each step."""
    return [min(1.0, (t + 1) / warmup_steps) for t in range(steps)]


def test_reference_is_torch_lambdalr_warmup():
    torch = pytest.importorskip("torch")  # not in CI: the reference stands in for it there
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda t: min(1.0, (t + 1) / 7))
    lrs = []
    for _ in range(12):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    np.testing.assert_allclose(lrs, np.multiply(1e-3, torch_warmup_factors(7, 12)), rtol=1e-15)


@pytest.mark.parametrize("warmup_steps", [1, 7, 25])
def test_warmup_scales_the_first_steps_and_leaves_the_schedule_after(warmup_steps):
    """StepLR(2, 0.5) at 7 steps an epoch, so a 25-step warm-up spans a decay."""
    steps = jnp.arange(6 * 7)
    plain = learning_rate_schedule("step", 0.1, 7, 6, step_size=2, gamma=0.5)
    warmed = np.asarray(jax.jit(with_warmup(plain, warmup_steps))(steps))
    expected = np.asarray(plain(steps)) * np.float32(torch_warmup_factors(warmup_steps, 42))
    np.testing.assert_allclose(warmed, expected, rtol=1e-6)
    np.testing.assert_array_equal(warmed[warmup_steps - 1:], np.asarray(plain(steps))[warmup_steps - 1:])
    assert warmed[0] == pytest.approx(float(plain(0)) / warmup_steps, rel=1e-6)
    assert with_warmup(plain, 0) is plain


def test_clipping_scales_the_gradient_to_the_norm_before_the_step():
    """torch: clip_grad_norm_(params, 1.0) then SGD(lr 0.1): a (3, 4) gradient of norm 5 moves
    the params by 0.1 * (0.6, 0.8); one inside the norm is left as it is."""
    tx = make_optimizer("sgd", optax.constant_schedule(0.1), clip_norm=1.0)
    params = {"a": jnp.zeros(1), "b": jnp.zeros(1)}
    state = tx.init(params)
    updates, state = tx.update({"a": jnp.array([3.0]), "b": jnp.array([4.0])}, state, params)
    np.testing.assert_allclose([updates["a"][0], updates["b"][0]], [-0.06, -0.08], rtol=1e-6)
    updates, _ = tx.update({"a": jnp.array([0.3]), "b": jnp.array([0.4])}, state, params)
    np.testing.assert_allclose([updates["a"][0], updates["b"][0]], [-0.03, -0.04], rtol=1e-6)
    unclipped = make_optimizer("sgd", optax.constant_schedule(0.1))
    assert jax.tree.structure(unclipped.init(params)) != jax.tree.structure(state)


def test_unknown_names_are_one_line_errors():
    with pytest.raises(JaxninError, match="unknown `schedule`"):
        learning_rate_schedule("linear", 0.1, 1, 1)
    with pytest.raises(JaxninError, match="unknown `optimizer`"):
        make_optimizer("rmsprop", optax.constant_schedule(0.1))


GOOD = dict(model="lenet", optimizer="momentum", lr=1e-3, momentum=0.9, schedule="step",
            step_size=10, gamma=0.1)


@pytest.mark.parametrize("flag, value", [
    ("lr", 0.0), ("lr", -1e-3), ("lr", float("inf")), ("lr", float("nan")),
    ("momentum", 1.0), ("momentum", 5.0), ("momentum", -0.1), ("momentum", float("nan")),
    ("gamma", 0.0), ("gamma", -1.0), ("gamma", 1.5), ("gamma", float("nan")),
    ("step_size", 0), ("optimizer", "rmsprop"), ("schedule", "linear"), ("warmup_steps", -1),
    ("clip_norm", 0.0), ("clip_norm", -1.0), ("clip_norm", float("inf")),
    ("clip_norm", float("nan"))])
def test_values_torch_would_not_mean_are_one_line_errors_naming_the_field(flag, value):
    with pytest.raises(JaxninError) as refused:
        TrainConfig(**{**GOOD, flag: value})
    message = str(refused.value)
    assert f"`{flag}` " in message and "\n" not in message, message


def test_gamma_zero_says_what_to_do_instead_where_it_would_waste_epochs():
    with pytest.raises(JaxninError, match=r"^`gamma` must be in \(0, 1\], got 0.0: 0 would stop "
                                          r"learning after epoch 10; set `epochs` 10 instead$"):
        TrainConfig(**{**GOOD, "gamma": 0.0, "epochs": 11})
    for unused in ({"epochs": 10}, {"schedule": "constant", "epochs": 11}):  # no decay comes
        with pytest.raises(JaxninError, match=r"^`gamma` must be in \(0, 1\], got 0.0$"):
            TrainConfig(**{**GOOD, "gamma": 0.0, **unused})


@pytest.mark.parametrize("flag, value", [("momentum", 0.0), ("momentum", 0.999),
                                         ("gamma", 1.0), ("gamma", 1e-9), ("step_size", 1),
                                         ("lr", 1e3), ("optimizer", "adam"),
                                         ("warmup_steps", 0), ("warmup_steps", 1),
                                         ("clip_norm", None), ("clip_norm", 1e-6)])
def test_edges_torch_means_are_accepted(flag, value):
    TrainConfig(**{**GOOD, flag: value})


def test_the_constructors_refuse_them_too():
    with pytest.raises(JaxninError, match="`gamma`"):
        learning_rate_schedule("step", 1e-3, 10, 5, gamma=-1.0)
    with pytest.raises(JaxninError, match="`lr`"):
        learning_rate_schedule("constant", float("inf"), 10, 5)
    with pytest.raises(JaxninError, match="`momentum`"):
        make_optimizer("momentum", optax.constant_schedule(0.1), momentum=5.0)


def test_only_cosine_depends_on_the_run_length():
    """Why a resume may grow --epochs for constant and step but not for cosine."""
    steps = jnp.arange(20 * 7)
    for name in ("constant", "step", "cosine"):
        short, long = (learning_rate_schedule(name, 0.1, 7, epochs, 3, 0.5)(steps)
                       for epochs in (20, 50))
        assert np.array_equal(short, long) == (schedule_horizon_epochs(name, 20) is None), name
    assert schedule_horizon_epochs("cosine", 20) == 20


def test_resume_keeps_the_cosine_horizon():
    check_resume_epochs("cosine", 20, 20)
    check_resume_epochs("step", 20, 30)
    check_resume_epochs("constant", 20, 50)
    for epochs in (30, 10):
        with pytest.raises(JaxninError, match=rf"`epochs` {epochs} on resume.*`epochs` 20"):
            check_resume_epochs("cosine", 20, epochs)
