"""Which library XLA:CPU runs a run's convolutions with (TrainConfig.cpu_convolutions).

Recent jaxlibs send every convolution on the CPU to YNNPACK. For NiN's shapes XLA's own Eigen
path is much faster (measured in experiments/bench/), so a run may choose:

* "ynnpack": XLA:CPU's defaults, whatever they are in the installed jaxlib.
* "eigen": convolutions on XLA's Eigen path; dots and reductions stay as the defaults have
  them, and a model with 1x1 convolutions computes them as matrix products (same parameters),
  which YNNPACK then runs as dots.

Both compute the same function to float32 rounding (tests/test_kernels.py), but not the same
bits, and the choice is part of the compiled program (so of the compile cache's key). On other
backends the choice changes nothing: GPU programs compile as they always have.
"""
import functools

import jax
import jax.numpy as jnp

CPU_CONVOLUTIONS = ("ynnpack", "eigen")
_FUSION_OPTION = "xla_cpu_experimental_ynn_fusion_type"
# Per compilation XLA takes the whole list of kinds it hands to YNNPACK (the `-kind` form is
# XLA_FLAGS's alone, read once when JAX starts). This is jaxlib 0.10's default list without
# INDIVIDUAL_CONVOLUTION; tests/test_kernels.py checks that it compiles exactly what
# XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=-individual_convolution compiles.
_DEFAULTS_WITHOUT_CONVOLUTIONS = "LIBRARY_FUSION_TYPE_INDIVIDUAL_DOT,LIBRARY_FUSION_TYPE_REDUCE"


def on_cpu() -> bool:
    """Whether programs compile for XLA:CPU (JAX's default backend)."""
    return jax.default_backend() == "cpu"


def compiler_options(cpu_convolutions: str) -> dict | None:
    """XLA compiler options that make a program's convolutions run as `cpu_convolutions`
    says; None where the defaults already do (other backends, or a jaxlib whose XLA:CPU does
    not send convolutions to YNNPACK, such as 0.8)."""
    if cpu_convolutions not in CPU_CONVOLUTIONS:
        raise ValueError(f"cpu_convolutions must be one of {CPU_CONVOLUTIONS}, "
                         f"got {cpu_convolutions!r}")
    if cpu_convolutions == "ynnpack" or not on_cpu() or not ynnpack_runs_convolutions():
        return None
    return {_FUSION_OPTION: _DEFAULTS_WITHOUT_CONVOLUTIONS}


def wants_pointwise_dots(cpu_convolutions: str) -> bool:
    """Whether a model built for a run computes its 1x1 convolutions as matrix products."""
    return cpu_convolutions == "eigen" and on_cpu()


@functools.cache
def ynnpack_runs_convolutions() -> bool:
    """Whether this jaxlib's XLA:CPU sends convolutions to YNNPACK by default (a tiny compile,
    once per process)."""
    def conv(x, w):  # the ReLU stays with XLA (eltwise fusions are not in YNNPACK's defaults)
        return jax.nn.relu(jax.lax.conv_general_dilated(
            x, w, (1, 1), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")))

    # XLA keeps tiny convolutions for itself: this one is large enough to be handed over.
    images = jax.ShapeDtypeStruct((8, 32, 32, 32), jnp.float32)
    kernel = jax.ShapeDtypeStruct((3, 3, 32, 32), jnp.float32)
    text = jax.jit(conv).lower(images, kernel).compile().as_text()
    return "ynn_fusion" in text


def program(**jit_kwargs):
    """Decorator: `jax.jit(fn, **jit_kwargs)`, with `.for_convolutions(choice)` giving the same
    program compiled with `compiler_options(choice)` (made once per choice)."""
    def wrap(fn):
        jitted = jax.jit(fn, **jit_kwargs)

        @functools.cache
        def with_options(options: tuple):
            return jax.jit(fn, compiler_options=dict(options), **jit_kwargs)

        def for_convolutions(cpu_convolutions: str):
            options = compiler_options(cpu_convolutions)
            return jitted if options is None else with_options(tuple(sorted(options.items())))

        jitted.for_convolutions = for_convolutions
        return jitted
    return wrap
