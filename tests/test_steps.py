"""Device-resident pipeline and the jitted steps: order, masking, resize, learning."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxnin.data.pipeline import eval_order, preprocess, resize_matrix, to_device, train_order
from jaxnin.models import create_model
from jaxnin.train.optim import make_optimizer
from jaxnin.train.steps import (create_train_state, evaluate_split, mean_metrics, train_epoch,
                                train_step)


def test_train_order_shuffles_then_drops_the_remainder():
    order = np.asarray(train_order(jax.random.key(0), 1000, 128))
    chex.assert_shape(order, (7, 128))
    assert len(set(order.ravel())) == 896  # no repeats
    assert not np.array_equal(np.sort(order.ravel()), np.arange(896))  # drawn from all 1000
    other = np.asarray(train_order(jax.random.key(1), 1000, 128))
    assert not np.array_equal(order, other)


def test_eval_order_counts_every_example_once():
    order, mask = eval_order(10_000, 768)
    chex.assert_shape(order, (14, 768))
    valid = np.asarray(order)[np.asarray(mask)]
    np.testing.assert_array_equal(valid, np.arange(10_000))


def test_preprocess_scales_and_resizes_like_jax_image_resize():
    images = jax.random.randint(jax.random.key(0), (3, 28, 28, 1), 0, 256).astype(jnp.uint8)
    plain = preprocess(images, None)
    chex.assert_type(plain, jnp.float32)
    np.testing.assert_allclose(plain, np.asarray(images) / 255.0, rtol=1e-6)
    for size in (224, 96, 67):
        resized = preprocess(images, size)
        chex.assert_shape(resized, (3, size, size, 1))
        expected = jax.image.resize(plain, (3, size, size, 1), "bilinear")
        np.testing.assert_allclose(resized, expected, atol=1e-5)
    chex.assert_shape(resize_matrix(28, 224), (224, 28))


def lenet_state(tx=None, seed=0):
    tx = tx or make_optimizer("momentum", optax.constant_schedule(0.01))
    return create_train_state(create_model("lenet"), tx, jax.random.key(seed), (28, 28, 1))


def test_eval_counts_all_10000_test_examples_with_a_ragged_batch(fashion):
    state = lenet_state()
    test = to_device(fashion.test_images, fashion.test_labels)
    sums = evaluate_split(state, test, 768)
    metrics = mean_metrics(sums)
    assert metrics["count"] == 10_000
    logits = state.apply_fn({"params": state.params}, fashion.test_images / np.float32(255))
    assert int(sums["correct"]) == np.sum(np.argmax(logits, -1) == fashion.test_labels)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, fashion.test_labels).mean()
    np.testing.assert_allclose(metrics["loss"], loss, rtol=1e-5)


def test_train_steps_lower_the_loss_on_real_data(fashion):
    """NiN, the main job's net, at its smallest input; 20 Adam steps on one real batch."""
    model = create_model("nin")
    state = create_train_state(model, make_optimizer("adam", optax.constant_schedule(2e-3)),
                               jax.random.key(0), (67, 67, 1))
    batch = {"image": jnp.asarray(fashion.train_images[:64]),
             "label": jnp.asarray(fashion.train_labels[:64])}
    losses = []
    for step in range(20):
        state, sums = train_step(state, batch, jax.random.key(step), 67)
        losses.append(float(sums["loss_sum"] / sums["count"]))
    # ln(10) = 2.303 falls by more than 0.1; step to step dropout adds noise, so the trend
    # is read from the ends
    assert losses[-1] < losses[0] - 0.1, losses
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.1, losses
    assert int(state.step) == 20


def test_fused_epoch_equals_stepwise_epoch(fashion):
    """The GPU path (one lax.scan) and the CPU path (dispatch per step) train identically."""
    train = to_device(fashion.train_images, fashion.train_labels, limit=640)
    results = []
    for fused in (True, False):
        state, sums = train_epoch(lenet_state(), train, jax.random.key(3), 32, None, fused=fused)
        results.append((jax.device_get(state.params), jax.device_get(sums)))
    chex.assert_trees_all_close(results[0][0], results[1][0], atol=1e-6)
    chex.assert_trees_all_close(results[0][1], results[1][1], rtol=1e-5)
    assert results[0][1]["count"] == 640


def test_epoch_is_deterministic_in_its_key(fashion):
    train = to_device(fashion.train_images, fashion.train_labels, limit=256)
    a, _ = train_epoch(lenet_state(), train, jax.random.key(5), 32)
    b, _ = train_epoch(lenet_state(), train, jax.random.key(5), 32)
    c, _ = train_epoch(lenet_state(), train, jax.random.key(6), 32)
    chex.assert_trees_all_equal(a.params, b.params)
    assert not np.allclose(a.params["conv1"]["kernel"], c.params["conv1"]["kernel"])


def test_the_unoptimised_init_gives_the_bits_of_the_optimised_one():
    """create_train_state compiles its one-off init without XLA's optimisations on the CPU (see
    one_off_jit); every recorded seed's init must stay what it was. (VGG's init is
    left out: its optimised compile alone takes 17 s.)"""
    tx = make_optimizer("momentum", optax.constant_schedule(0.1), 0.9)
    for name, options, shape in [("nin", {"num_1x1": 1}, (67, 67, 3)), ("lenet", {}, (28, 28, 1))]:
        model = create_model(name, num_classes=10, **options)
        optimised = jax.jit(lambda key: model.init(key, jnp.zeros((1, *shape)))["params"])
        state = create_train_state(model, tx, jax.random.key(3), shape)
        chex.assert_trees_all_equal(state.params, optimised(jax.random.key(3)))
    keys = jnp.stack([jax.random.key(5), jax.random.key(6)])  # --seeds: vmapped, the same bits
    stacked = create_train_state(model, tx, keys, shape)
    chex.assert_trees_all_equal(jax.tree.map(lambda x: x[1], stacked.params),
                                optimised(jax.random.key(6)))


def test_an_eval_batch_above_the_split_is_capped_at_it(fashion, monkeypatch):
    """A batch of 10**7 over 300 examples evaluates as one batch of 300 (not a 10**7 program
    that the memory killer ends), with the sums of a batch that fits exactly."""
    from jaxnin.train import steps
    state = lenet_state()
    test = to_device(fashion.test_images, fashion.test_labels, 300)
    exact = evaluate_split(state, test, 300)
    sizes = []
    monkeypatch.setattr(steps, "eval_order",
                        lambda count, size: sizes.append(size) or eval_order(count, size))
    capped = evaluate_split(state, test, 10**7)
    assert sizes == [300]
    for key in exact:
        np.testing.assert_array_equal(capped[key], exact[key])
