"""Model summary: exact FLOPs, agreement with XLA's cost analysis, and the CLI."""
import subprocess
import sys

import jax
import jax.numpy as jnp
import pytest

from jaxnin import summary as summary_cli
from jaxnin.models import create_model
from jaxnin.report.summary import summarize
from jaxnin.train.steps import one_off_jit

NIN_FLOPS = 1_524_594_704  # 2 x multiply-adds of every conv at 224x224x1


def test_nin_forward_flops_at_224():
    flops = summarize(create_model("nin"), (224, 224, 1)).total_flops
    assert flops == NIN_FLOPS
    assert abs(flops / 1.525e9 - 1) < 0.005


def xla_flops(fn, *args):
    return jax.jit(fn).lower(*args).compile().cost_analysis()["flops"]


def test_every_nin_conv_matches_xla_cost_analysis():
    """XLA skips multiplications with padding zeros, so each conv is costed on an input
    padded beforehand; then XLA's count and ours must agree exactly, layer by layer."""
    model = create_model("nin")
    convs = [row for row in summarize(model, (224, 224, 1)).rows if row.kind.startswith("Conv")]
    assert len(convs) == 12
    shapes = {"NiNBlock_0": (224, 224, 1, 11, 4, 0), "NiNBlock_1": (26, 26, 96, 5, 1, 2),
              "NiNBlock_2": (12, 12, 256, 3, 1, 1), "NiNBlock_3": (5, 5, 384, 3, 1, 1)}
    for row in convs:
        block, conv = row.path.split("/")
        height, width, channels, kernel, stride, pad = shapes[block]
        if conv != "Conv_0":
            height, width, _ = row.output_shape
            channels, kernel, stride, pad = row.output_shape[-1], 1, 1, 0
        x = jnp.zeros((1, height + 2 * pad, width + 2 * pad, channels))
        w = jnp.zeros((kernel, kernel, channels, row.output_shape[-1]))
        conv_fn = lambda x, w: jax.lax.conv_general_dilated(
            x, w, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
        assert xla_flops(conv_fn, x, w) == row.flops, row.path


def test_whole_nin_is_close_to_xla_cost_analysis():
    """Whole-net XLA count: fewer padded taps, plus bias, ReLU and pool ops; within 7 %."""
    model = create_model("nin")
    x = jnp.zeros((1, 224, 224, 1))
    params = one_off_jit(model.init)(jax.random.key(0), x)
    xla = xla_flops(lambda p, x: model.apply(p, x), params, x)
    assert abs(xla / NIN_FLOPS - 1) < 0.07


@pytest.mark.parametrize("argv, expected", [
    (["nin"], ["1992166", "1.525 G", "54x54x96", "multiply-add = 2"]),
    (["nin", "--num-1x1", "1"], ["1769112"]),
    (["vgg11"], ["128806154", "7x7x512"]),
    (["vgg13", "--input-shape", "32,32,3", "--width-divisor", "4"], ["1x1x128"]),
    (["vgg16"], ["total params"]),
    (["vgg19"], ["total params"]),
    (["lenet"], ["61706", "1x1x120"]),
    (["nin", "--input-shape", "96,96,16", "--num-classes", "20"], ["1x1x20", "20 classes"]),
])
def test_summary_cli_prints_table_and_totals(argv, expected, capsys):
    assert summary_cli.main(argv) == 0
    out = capsys.readouterr().out
    for text in expected:
        assert text in out


def test_summary_module_runs_as_a_command():
    result = subprocess.run([sys.executable, "-m", "jaxnin.summary", "nin"],
                            capture_output=True, text=True, check=True)
    assert "total params: 1,992,166 (1992166)" in result.stdout


def test_summary_cli_rejects_a_bad_shape_in_one_line():
    result = subprocess.run([sys.executable, "-m", "jaxnin.summary", "nin", "--input-shape",
                             "32,32,1"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "at least 67x67" in result.stderr
