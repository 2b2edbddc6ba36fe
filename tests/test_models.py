"""Model zoo: exact parameter counts, shapes, init, dtypes and dropout behaviour."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxnin.errors import JaxninError
from jaxnin.models import VGG_CONFIGS, create_model
from jaxnin.models.nin import graded_widths
from jaxnin.report.summary import summarize
from jaxnin.train.steps import one_off_jit


def param_count(model, shape):
    variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, *shape))))
    return sum(leaf.size for leaf in jax.tree.leaves(variables["params"]))


def init_params(model, shape, seed=0):
    # Compiled as create_train_state does: eager, every initializer compiled optimised alone.
    return one_off_jit(model.init)(jax.random.key(seed), jnp.zeros((1, *shape)))["params"]


@pytest.mark.parametrize("name, options, shape, expected", [
    ("nin", {}, (224, 224, 1), 1_992_166),
    ("nin", {"num_1x1": 1}, (224, 224, 1), 1_769_112),
    ("vgg11", {}, (224, 224, 1), 128_806_154),
    ("lenet", {}, (28, 28, 1), 61_706),
])
def test_exact_param_counts(name, options, shape, expected):
    assert param_count(create_model(name, **options), shape) == expected
    assert summarize(create_model(name, **options), shape).total_params == expected


def test_nin_block_shapes_follow_seed_001_at_224():
    rows = {r.path: r.output_shape for r in summarize(create_model("nin"), (224, 224, 1)).rows}
    assert [rows[f"NiNBlock_{i}"] for i in range(4)] == [
        (54, 54, 96), (26, 26, 256), (12, 12, 384), (5, 5, 10)]
    assert [rows[f"MaxPool_{i}"] for i in range(3)] == [(26, 26, 96), (12, 12, 256), (5, 5, 384)]
    assert rows["GlobalAvgPool_0"] == (10,)


class NiNAnySizeTest(chex.TestCase):
    """NiN's global pool has no hard-coded window: it works at 96, 224 and on frame stacks."""

    @chex.variants(with_jit=True, without_jit=True)
    def test_logits_for_sizes_and_channels(self):
        for shape, classes in [((96, 96, 1), 10), ((224, 224, 16), 7), ((67, 67, 16), 5)]:
            model = create_model("nin", num_classes=classes)
            params = init_params(model, shape)
            logits = self.variant(lambda p, x: model.apply({"params": p}, x))(
                params, jnp.ones((3, *shape)))
            chex.assert_shape(logits, (3, classes))
            chex.assert_type(logits, jnp.float32)
            chex.assert_tree_all_finite(logits)


@pytest.mark.parametrize("config", sorted(VGG_CONFIGS))
def test_every_vgg_config_gives_logits_at_224(config):
    model = create_model(f"vgg{ {'A': 11, 'B': 13, 'D': 16, 'E': 19}[config] }")
    out = jax.eval_shape(lambda: model.init_with_output(jax.random.key(0),
                                                        jnp.zeros((2, 224, 224, 1)))[0])
    chex.assert_shape(out, (2, 10))
    assert out.dtype == jnp.float32
    convs = [c for c in VGG_CONFIGS[config] if c != "M"]
    assert len(convs) + 3 == {"A": 11, "B": 13, "D": 16, "E": 19}[config]


@pytest.mark.parametrize("size", [96, 32])
def test_vgg_first_dense_adapts_to_input_size(size):
    model = create_model("vgg11", width_divisor=8, hidden=64)
    params = init_params(model, (size, size, 1))
    spatial = size // 32
    chex.assert_shape(params["Dense_0"]["kernel"], (spatial * spatial * 512 // 8, 64))
    chex.assert_shape(model.apply({"params": params}, jnp.ones((2, size, size, 1))), (2, 10))


def test_lenet_shapes_at_28():
    rows = {r.path: r.output_shape for r in summarize(create_model("lenet"), (28, 28, 1)).rows}
    assert rows["conv1"] == (28, 28, 6) and rows["AvgPool_0"] == (14, 14, 6)
    assert rows["conv2"] == (10, 10, 16) and rows["AvgPool_1"] == (5, 5, 16)
    assert rows["conv3"] == (1, 1, 120) and rows["fc1"] == (84,) and rows["output"] == (10,)


def test_lenet_activations_sit_where_the_seed_puts_them():
    """Sigmoid after conv1 and conv2; conv3 -> fc1 -> output are plain affine maps."""
    model = create_model("lenet")
    params = init_params(model, (28, 28, 1))
    x = jax.random.uniform(jax.random.key(1), (2, 28, 28, 1))
    logits, state = model.apply({"params": params}, x, capture_intermediates=True,
                                mutable=["intermediates"])
    seen = {k: v["__call__"][0] for k, v in state["intermediates"].items() if k != "__call__"}
    pooled = jax.nn.sigmoid(seen["conv1"]).reshape(2, 14, 2, 14, 2, 6).mean(axis=(2, 4))
    np.testing.assert_allclose(seen["AvgPool_0"], pooled, rtol=1e-5, atol=1e-6)
    affine = lambda h, layer: h @ params[layer]["kernel"] + params[layer]["bias"]
    np.testing.assert_allclose(seen["fc1"], affine(seen["conv3"].reshape(2, -1), "fc1"),
                               rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(logits, affine(seen["fc1"], "output"), rtol=1e-5, atol=1e-5)


def test_same_key_same_params_and_different_key_different_params():
    model = create_model("nin")
    a, b = init_params(model, (96, 96, 1), 0), init_params(model, (96, 96, 1), 0)
    c = init_params(model, (96, 96, 1), 1)
    chex.assert_trees_all_equal(a, b)
    assert not np.allclose(a["NiNBlock_0"]["Conv_0"]["kernel"], c["NiNBlock_0"]["Conv_0"]["kernel"])


def test_xavier_uniform_weights_and_zero_biases():
    params = init_params(create_model("nin"), (224, 224, 1))
    kernel = params["NiNBlock_1"]["Conv_0"]["kernel"]  # 5x5, 96 -> 256
    limit = np.sqrt(6 / (25 * 96 + 25 * 256))
    assert np.abs(kernel).max() <= limit and np.abs(kernel).max() > 0.99 * limit
    np.testing.assert_allclose(np.var(kernel), limit ** 2 / 3, rtol=0.02)
    for bias in [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
                 if path[-1].key == "bias"]:
        assert not np.any(bias)


@pytest.mark.parametrize("name, shape, options", [
    ("nin", (96, 96, 1), {}), ("vgg11", (32, 32, 1), {"width_divisor": 8, "hidden": 256}),
    ("lenet", (28, 28, 1), {})])
def test_bf16_compute_keeps_fp32_params_and_fp32_logits(name, shape, options):
    model = create_model(name, dtype=jnp.bfloat16, **options)
    params = init_params(model, shape)
    chex.assert_trees_all_equal_dtypes(params, jax.tree.map(
        lambda p: p.astype(jnp.float32), params))
    logits = model.apply({"params": params}, jnp.ones((2, *shape)))
    chex.assert_type(logits, jnp.float32)
    ref = create_model(name, **options).apply({"params": params}, jnp.ones((2, *shape)))
    assert not np.array_equal(logits, ref)  # the compute really ran in bf16
    np.testing.assert_allclose(logits, ref, rtol=0.1, atol=0.05)


def test_dropout_only_in_training():
    model = create_model("nin")
    params = init_params(model, (96, 96, 1))
    x = jax.random.uniform(jax.random.key(3), (4, 96, 96, 1))
    apply = lambda train, key: model.apply({"params": params}, x, train=train,
                                           rngs={"dropout": key})
    chex.assert_trees_all_equal(apply(False, jax.random.key(0)), apply(False, jax.random.key(1)))
    chex.assert_trees_all_equal(apply(True, jax.random.key(0)), apply(True, jax.random.key(0)))
    assert not np.allclose(apply(True, jax.random.key(0)), apply(True, jax.random.key(1)))


def test_nin_names_its_minimum_input_size():
    model = create_model("nin")
    init_params(model, (67, 67, 1))
    with pytest.raises(JaxninError, match="at least 67x67"):
        init_params(model, (66, 66, 1))


def test_graded_head_narrows_to_the_classes():
    assert graded_widths(384, 10, 3) == (114, 34, 10)
    rows = {r.path: r.output_shape for r in
            summarize(create_model("nin", head="graded"), (224, 224, 1)).rows}
    assert [rows[f"NiNBlock_3/Conv_{i}"][-1] for i in range(3)] == [114, 34, 10]


def test_head_levers_change_only_the_last_block_s_start_and_its_final_relu():
    """The dead-class levers (issue 16): same params apart from the last block's biases, and
    logits that can go below 0 only with `linear_logits`."""
    seed_net = init_params(create_model("nin", num_classes=8), (67, 67, 1))
    biased = init_params(create_model("nin", num_classes=8, head_bias=0.1), (67, 67, 1))
    head = biased.pop("NiNBlock_3")
    assert all(np.all(conv["bias"] == np.float32(0.1)) for conv in head.values())
    chex.assert_trees_all_equal(
        {k: {c: v["kernel"] for c, v in b.items()} for k, b in seed_net.items()},
        {**{k: {c: v["kernel"] for c, v in b.items()} for k, b in biased.items()},
         "NiNBlock_3": {c: v["kernel"] for c, v in head.items()}})
    x = -jax.random.uniform(jax.random.key(1), (4, 67, 67, 1))
    relu_logits = create_model("nin", num_classes=8).apply({"params": seed_net}, x)
    linear = create_model("nin", num_classes=8, linear_logits=True).apply(
        {"params": seed_net}, x)
    assert np.all(relu_logits >= 0) and np.any(linear < 0)
    np.testing.assert_array_equal(np.maximum(linear, 0) > 0, relu_logits > 0)
