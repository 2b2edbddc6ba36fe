"""TrainConfig.cpu_convolutions (jaxnin.train.kernels): "eigen" takes XLA:CPU's convolutions off
YNNPACK and computes NiN's 1x1 convolutions as matrix products. Both must compute the same
function as the default (outputs and gradients to float32 rounding), keep the parameter tree,
and compile what XLA_FLAGS' `-individual_convolution` compiles."""
import os
import re
import subprocess
import sys

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from jaxnin.models import create_model
from jaxnin.models.layers import Conv, pointwise_as_dot
from jaxnin.train import kernels
from jaxnin.train.config import TrainConfig
from jaxnin.train.steps import compiled_epoch_text, create_train_state, evaluate_split
from jaxnin.data.pipeline import to_device

pytestmark = pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's kernels")


def _nin_state(pointwise_as_dot: bool, **options):
    model = create_model("nin", 10, pointwise_as_dot=pointwise_as_dot, **options)
    return create_train_state(model, optax.sgd(0.1), jax.random.key(0), (67, 67, 1))


def _images(count=8, size=67, seed=1):
    return jax.random.uniform(jax.random.key(seed), (count, size, size, 1))


def _loss_and_grads(state, images, labels):
    def loss(params):
        logits = state.apply_fn({"params": params}, images)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), logits

    return jax.value_and_grad(loss, has_aux=True)(state.params)


@pytest.mark.parametrize("options", [{}, {"num_1x1": 1, "head": "graded", "linear_logits": True}])
def test_pointwise_as_dot_keeps_the_params_and_the_function(options):
    conv, dot = _nin_state(False, **options), _nin_state(True, **options)
    chex.assert_trees_all_equal(conv.params, dot.params)  # same tree, same initial values
    images, labels = _images(), jnp.arange(8) % 10
    (loss_c, logits_c), grads_c = _loss_and_grads(conv, images, labels)
    (loss_d, logits_d), grads_d = _loss_and_grads(dot, images, labels)
    chex.assert_trees_all_close(logits_d, logits_c, rtol=1e-5, atol=1e-6)
    chex.assert_trees_all_close(grads_d, grads_c, rtol=1e-4, atol=1e-6)
    assert abs(float(loss_d) - float(loss_c)) < 1e-5


def test_pointwise_as_dot_is_a_conv_only_where_it_is_pointwise():
    x = jax.random.normal(jax.random.key(2), (2, 9, 9, 5))
    for layer in (Conv(7, (1, 1)), Conv(7, (3, 3), padding=1), Conv(7, (1, 1), strides=2),
                  Conv(7, (1, 1), padding=1)):
        params = layer.init(jax.random.key(3), x)
        as_dot = layer.clone(conv_general_dilated=pointwise_as_dot)
        chex.assert_trees_all_equal(as_dot.init(jax.random.key(3), x), params)
        chex.assert_trees_all_close(as_dot.apply(params, x), layer.apply(params, x),
                                    rtol=1e-5, atol=1e-6)
    pointwise = jax.make_jaxpr(lambda x: Conv(7, (1, 1), conv_general_dilated=pointwise_as_dot)
                               .init_with_output(jax.random.key(3), x))(x)
    assert "dot_general" in str(pointwise) and "conv_general_dilated" not in str(pointwise)


def _compiled_step(cpu_convolutions: str, pointwise_as_dot: bool) -> str:
    state = _nin_state(pointwise_as_dot)
    split = to_device(np.zeros((16, 28, 28, 1), np.uint8), np.zeros(16, np.int32))
    return compiled_epoch_text(state, split, jax.random.key(1), 8, 67, cpu_convolutions)[0]


def _convolutions_in_ynnpack(text: str) -> int:
    """Convolutions inside the computations that YNNPACK fusions call."""
    called = set(re.findall(r"ynn_fusion[.\d]* = .*calls=%([\w.]+)", text))
    bodies = dict(re.findall(r"^%?([\w.]+) [^\n]*\{\n((?:.*\n)*?)\}", text, re.M))
    return sum(bodies.get(name, "").count(" convolution(") for name in called)


@pytest.mark.skipif(not kernels.ynnpack_runs_convolutions(),
                    reason="this jaxlib's XLA:CPU runs convolutions on Eigen already")
def test_eigen_takes_every_convolution_off_ynnpack_and_1x1s_become_dots():
    default, eigen = _compiled_step("ynnpack", False), _compiled_step("eigen", True)
    assert _convolutions_in_ynnpack(default) > 0
    assert _convolutions_in_ynnpack(eigen) == 0
    # NiN has 8 1x1 convs; forward and two backward products each are dots now.
    assert eigen.count(" convolution(") < default.count(" convolution(") - 8


_NORMALISE = re.compile(r", metadata=\{[^}]*\}|\.\d+\b")


def _normalised(text: str) -> list[str]:
    return [line for line in _NORMALISE.sub("", text).splitlines()
            if line.strip() and not re.match(r"\s*(\d+ |FileNames|FunctionNames|FileLocations|"
                                             r"StackFrames)", line)]


_UNDER_FLAGS = """
import sys
sys.path.insert(0, sys.argv[1])
import test_kernels
print(test_kernels._compiled_step("ynnpack", False))
"""


@pytest.mark.skipif(not kernels.ynnpack_runs_convolutions(),
                    reason="this jaxlib's XLA:CPU runs convolutions on Eigen already")
def test_eigen_compiles_what_xla_flags_minus_individual_convolution_compiles():
    """The per-compilation list is the installed jaxlib's default list less convolutions: a
    jaxlib that changes its defaults fails here instead of silently losing a kind."""
    env = {**os.environ, "XLA_FLAGS": os.environ.get("XLA_FLAGS", "")
           + " --xla_cpu_experimental_ynn_fusion_type=-individual_convolution"}
    flagged = subprocess.run([sys.executable, "-c", _UNDER_FLAGS, os.path.dirname(__file__)],
                             env=env, capture_output=True, text=True, check=True).stdout
    assert _normalised(_compiled_step("eigen", False)) == _normalised(flagged)


def test_evaluation_under_eigen_scores_as_the_default():
    state, dot_state = _nin_state(False), _nin_state(True)
    labels = np.arange(40) % 10
    images = np.asarray(jax.random.randint(jax.random.key(4), (40, 28, 28, 1), 0, 256), np.uint8)
    split = to_device(images, labels)
    default = evaluate_split(state, split, 16, 67, "ynnpack")
    eigen = evaluate_split(dot_state, split, 16, 67, "eigen")
    assert int(eigen["count"]) == int(default["count"]) == 40
    np.testing.assert_allclose(float(eigen["loss_sum"]), float(default["loss_sum"]), rtol=1e-5)


def test_the_choice_is_a_recorded_option_and_old_records_keep_ynnpack():
    assert TrainConfig(model="nin").cpu_convolutions == "eigen"
    assert TrainConfig(model="vgg11").cpu_convolutions == "eigen"
    assert TrainConfig(model="lenet").cpu_convolutions == "ynnpack"
    record = TrainConfig(model="nin").to_json()
    assert record["cpu_convolutions"] == "eigen"
    del record["cpu_convolutions"]  # a run.json written before the option existed
    assert TrainConfig.from_json(record).cpu_convolutions == "ynnpack"
    with pytest.raises(Exception, match="cpu_convolutions"):
        TrainConfig(model="nin", cpu_convolutions="onednn")


def test_other_backends_get_no_compiler_options(monkeypatch):
    monkeypatch.setattr(kernels, "on_cpu", lambda: False)
    assert kernels.compiler_options("eigen") is None
    assert not kernels.wants_pointwise_dots("eigen")
