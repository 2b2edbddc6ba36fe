"""LeNet conv1 on XLA:CPU in isolation: XLA's convolution against image patches times a dot
(forward and weight gradient), 100 calls x 6 alternating rounds each; prints max |difference|
and the median ms per call. A probe for lenet-cpu-epoch.md, section 5.

    nice -n 19 python -m experiments.bench.lenet_conv_probe
"""
import argparse
import dataclasses
import json
import os
import statistics
import sys
import time

import jax
import jax.numpy as jnp
from jax import lax

from jaxnin.cli import command_parser, options_from, run_main


@dataclasses.dataclass(frozen=True)
class ProbeOptions:
    """None: the probe's sizes are LeNet conv1's, fixed. A number added here gets its flag and
    its range from add_flags."""


def parser() -> argparse.ArgumentParser:
    return command_parser("python -m experiments.bench.lenet_conv_probe", __doc__, ProbeOptions())


def main(argv) -> int:
    run(options_from(ProbeOptions, parser().parse_args(argv)))
    return 0


def run(options: ProbeOptions) -> None:
    """The probe (main calls it once the command line is checked)."""
    k = jax.random.split(jax.random.key(0), 3)
    x = jax.random.uniform(k[0], (16, 28, 28, 1)); dy = jax.random.normal(k[1], (16, 28, 28, 6))
    w = jax.random.normal(k[2], (5, 5, 1, 6))
    dn = ("NHWC", "HWIO", "NHWC")
    conv = lambda x, w: lax.conv_general_dilated(x, w, (1, 1), ((2, 2), (2, 2)),
                                                 dimension_numbers=dn)
    xla_wgrad = jax.jit(lambda x, dy: jax.vjp(lambda w: conv(x, w), w)[1](dy)[0])
    def patch_wgrad(x, dy):
        p = lax.conv_general_dilated_patches(x, (5, 5), (1, 1), ((2, 2), (2, 2)),
                                             dimension_numbers=dn)
        return jnp.einsum("bhwk,bhwc->kc", p, dy).reshape(1, 5, 5, 6).transpose(1, 2, 0, 3)
    patch_wgrad = jax.jit(patch_wgrad)
    xla_fwd = jax.jit(conv)
    def patch_fwd(x, w):
        p = lax.conv_general_dilated_patches(x, (5, 5), (1, 1), ((2, 2), (2, 2)),
                                             dimension_numbers=dn)
        return jnp.einsum("bhwk,kc->bhwc", p, w.transpose(2, 0, 1, 3).reshape(25, 6))
    patch_fwd = jax.jit(patch_fwd)
    fns = {"xla_wgrad": (xla_wgrad, (x, dy)), "patch_wgrad": (patch_wgrad, (x, dy)),
           "xla_fwd": (xla_fwd, (x, w)), "patch_fwd": (patch_fwd, (x, w))}
    print("max |diff| wgrad", float(jnp.abs(xla_wgrad(x, dy) - patch_wgrad(x, dy)).max()),
          "fwd", float(jnp.abs(xla_fwd(x, w) - patch_fwd(x, w)).max()))
    t = {n: [] for n in fns}
    for r in range(6):
        for n, (f, a) in fns.items():
            jax.block_until_ready(f(*a))
            s = time.perf_counter()
            for _ in range(100):
                out = f(*a)
            jax.block_until_ready(out)
            t[n].append(1e3 * (time.perf_counter() - s) / 100)
    print(json.dumps({n: [round(statistics.median(v), 3), [round(x, 3) for x in v]]
                      for n, v in t.items()}))


if __name__ == "__main__":
    # As before run_main: compiled here, never read from jaxnin's persistent compilation cache
    # (which run_main turns on where JAX is already loaded, as it is here).
    os.environ["JAXNIN_COMPILE_CACHE"] = "0"
    sys.exit(run_main(main))
