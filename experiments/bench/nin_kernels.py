"""Where a NiN@67 training step goes on the CPU, op by op, in jaxnin (XLA) and in PyTorch.

    python -m experiments.bench.nin_kernels [--steps 5] [--batch-size 128] > nin-kernels.md

Both sides train seed 001's NiN at 67x67 on the same kind of synthetic batch (SGD, lr 0.1) for
a few warm-up steps, then trace `--steps` more: jaxnin with jax.profiler (the XLA executor
threads; each kernel's convolution or dot read from the compiled HLO), PyTorch with
torch.profiler (each aten op's own CPU time, by input shapes). Times are per step.
"""
import argparse
import dataclasses
import os
import re
import sys
import tempfile
import time
from pathlib import Path

from experiments.bench.profile import profile_epoch
from jaxnin.cli import command_parser, options_from, run_main
from jaxnin.options import COUNT, option


def jaxnin_ops(steps: int, batch_size: int) -> tuple[float, list[tuple[str, float, str]]]:
    import jax
    import numpy as np
    import optax

    from jaxnin.data.pipeline import to_device
    from jaxnin.models import create_model
    from jaxnin.train import steps as jsteps

    rng = np.random.default_rng(0)
    count = batch_size * (steps + 2)
    split = to_device(rng.integers(0, 256, (count, 67, 67, 1), dtype=np.uint8),
                      rng.integers(0, 10, count).astype(np.int32))
    state = jsteps.create_train_state(create_model("nin"), optax.sgd(0.1), jax.random.key(0),
                                      (67, 67, 1))
    order, dropout_key = jsteps._epoch_plan(jax.random.key(1), split.count, batch_size)
    text = jsteps._indexed_step.lower(state, split, order[0], dropout_key, 0, None,
                                      False).compile().as_text()
    run = lambda state, i: jsteps._indexed_step(state, split, order[i], dropout_key, i, None, False)
    for i in range(2):
        state, _ = jax.block_until_ready(run(state, i))

    def traced_steps():
        nonlocal state
        for i in range(2, 2 + steps):
            state, _ = jax.block_until_ready(run(state, i))

    with tempfile.TemporaryDirectory() as trace_dir:  # the bench's own trace reading
        summary = profile_epoch(traced_steps, Path(trace_dir), top=10_000, hlo_texts=(text,))
    what = hlo_math(text)
    return summary["wall_s"] / steps, [(op["name"], op["seconds"] / steps, what.get(op["name"], ""))
                                       for op in summary["top"]]


def hlo_math(text: str) -> dict[str, str]:
    """{op or fusion name: its convolution's or dot's output shape, window and dim labels}."""
    math_line = re.compile(r"= (\S+) (convolution|dot)\((.*)")
    bodies, current, own = {}, None, {}
    for line in text.splitlines():
        opened = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
        if opened:
            current = opened.group(1)
            continue
        found = math_line.search(line)
        if found and current:
            shape = re.sub(r"\{[^}]*\}", "", found.group(1))
            details = " ".join(re.findall(r"(window=\{[^}]*\}|dim_labels=\S+|"
                                          r"lhs_contracting_dims=\{[^}]*\})", found.group(3)))
            name = re.match(r"\s*%?([\w.\-]+)", line).group(1)
            own[name] = bodies[current] = f"{found.group(2)} -> {shape} {details}".strip()
    for name, body in re.findall(r"%([\w.\-]+) = .*? calls=%([\w.\-]+)", text):
        if body in bodies:
            own[name] = bodies[body]
    return own


def torch_ops(steps: int, batch_size: int) -> tuple[float, list[tuple[str, float, str]]]:
    import torch
    import torch.nn.functional as F

    from experiments.bench.torch_reference import create_model

    torch.manual_seed(0)
    model = create_model("nin", image_size=67)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    x = torch.rand(batch_size, 1, 67, 67)
    y = torch.randint(0, 10, (batch_size,))

    def step():
        loss = F.cross_entropy(model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        return loss.item()

    for _ in range(2):
        step()
    activities = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activities, record_shapes=True) as prof:
        start = time.perf_counter()
        for _ in range(steps):
            step()
        wall = (time.perf_counter() - start) / steps
    rows = [(e.key, e.self_cpu_time_total / 1e6 / steps, str(e.input_shapes)[:90])
            for e in prof.key_averages(group_by_input_shape=True)]
    return wall, sorted(rows, key=lambda r: -r[1])


def table(title: str, wall: float, rows, top: int) -> list[str]:
    busy = sum(seconds for _, seconds, _ in rows)
    lines = [f"### {title}: {wall * 1e3:.0f} ms a step (wall), ops' own time {busy * 1e3:.0f} ms",
             "", "| op | ms a step | share of the ops' time | what |", "|---|---:|---:|---|"]
    lines += [f"| `{name[:40]}` | {seconds * 1e3:.1f} | {100 * seconds / busy:.1f} % | {what} |"
              for name, seconds, what in rows[:top]]
    return lines + [""]


@dataclasses.dataclass(frozen=True)
class KernelsOptions:
    """The command line, each number with its range."""
    steps: int = option(5, "traced training steps of each side, after 2 warm-up steps",
                        within=COUNT)
    batch_size: int = option(128, "examples a step", within=COUNT)
    top: int = option(15, "ops listed for each side, the longest first", within=COUNT)


def parser() -> argparse.ArgumentParser:
    return command_parser("python -m experiments.bench.nin_kernels", __doc__, KernelsOptions())


def main(argv) -> int:
    options = options_from(KernelsOptions, parser().parse_args(argv))
    run(options)
    return 0


def run(options: KernelsOptions) -> None:
    """The measurement (main calls it once every option is checked)."""
    import platform
    print(f"{platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; NiN at 67x67, batch "
          f"{options.batch_size}, {options.steps} traced steps\n")
    print("\n".join(table("jaxnin (XLA CPU)", *jaxnin_ops(options.steps, options.batch_size),
                          options.top)))
    print("\n".join(table("PyTorch (eager, CPU)", *torch_ops(options.steps, options.batch_size),
                          options.top)))


if __name__ == "__main__":
    # As before run_main: the step is compiled here, not read from jaxnin's persistent
    # compilation cache (which run_main turns on where JAX is already loaded, as it is here).
    os.environ["JAXNIN_COMPILE_CACHE"] = "0"
    sys.exit(run_main(main))
