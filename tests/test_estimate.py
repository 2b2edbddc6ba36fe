"""The whole run's cost, said before it is paid: every recipe's command prints one
`expected: ...` line once its steps are timed, and on a CPU a run of over an hour names a
cheaper way. Every time here comes from a fake clock; nothing trains."""
import importlib
import shlex
import tomllib
from pathlib import Path

import pytest

from jaxnin.recipes import RECIPES
from jaxnin.report import estimate, logging
from jaxnin.report.estimate import (EpochCost, GPU_INSTALL, Workload, clock_text,
                                    duration_text, seconds_left, step_seconds)
from jaxnin.report.logging import Console
from jaxnin.train.steps import steps_per_epoch

ROOT = Path(__file__).resolve().parents[1]
TRAIN_EXAMPLES, TEST_EXAMPLES = 60000, 10000
COMPILE_S = 40.0


class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def command_workload(name: str, platform: str = "cpu") -> Workload:
    """The Workload recipe `name`'s command line builds (its module, its flags), on `platform`."""
    argv = shlex.split(RECIPES[name].command)[2:]  # after `python -m`
    module = importlib.import_module(argv[0])
    if not hasattr(module, "RECIPE"):  # nin_ablation runs its own loop over fit
        config = RECIPES[name].config
        return Workload(config.epochs, config.batch_size, TEST_EXAMPLES, platform, platform)
    args = module.RECIPE.parser().parse_args(argv[1:])
    config = module.RECIPE.config(args)
    return Workload(config.epochs, config.batch_size, TEST_EXAMPLES, platform, platform,
                    cpu_recipe=module.RECIPE.cpu_recipe(args))


def first_epoch(console: Console, clock: FakeClock, steps: int, step_s: float, reports: int):
    """The engine's calls in a process's first epoch: a compile, then `reports` steps done."""
    console.compiling()
    console.epoch_started(1, steps)
    clock.now += COMPILE_S  # the first step waits for the compile
    for done in range(1, reports + 1):
        console.steps_done(done)
        clock.now += step_s


def expected_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("expected: ")]


@pytest.mark.parametrize("name", list(RECIPES))
def test_every_recipe_says_the_whole_run_s_time_once_its_steps_are_timed(name, capsys):
    work = command_workload(name)
    clock = FakeClock()
    console = Console(work.epochs, work=work, clock=clock)
    steps = steps_per_epoch(TRAIN_EXAMPLES, work.batch_size)
    first_epoch(console, clock, steps, step_s=0.5, reports=2)
    assert expected_lines(capsys.readouterr().out) == []  # one timed step is not enough
    for done in range(3, estimate.MEASURE_STEPS + 3):
        console.steps_done(done)
        clock.now += 0.5
    [line] = expected_lines(capsys.readouterr().out)
    assert f"for {work.epochs} epochs on cpu" in line, line


def slow_cpu_line(monkeypatch, work: Workload, step_s: float) -> tuple[str, float]:
    """The expected line of a first epoch at `step_s` a step, and the seconds of steps (after
    the first) it took to come."""
    clock, said = FakeClock(), []
    monkeypatch.setattr(logging, "print_line", lambda text: said.append((clock.now, text)))
    console = Console(work.epochs, work=work, clock=clock)
    first_epoch(console, clock, steps_per_epoch(TRAIN_EXAMPLES, work.batch_size), step_s,
                reports=20)
    [(when, line)] = [(t, text) for t, text in said if text.startswith("expected: ")]
    first_step = next(t for t, text in said if text.startswith("first step done"))
    return line, when - first_step


def test_the_main_job_on_a_cpu_names_its_cpu_recipe_within_a_minute_of_steps(monkeypatch):
    cpu = RECIPES["fashion_nin.cpu"]
    line, after = slow_cpu_line(monkeypatch, command_workload("fashion_nin"), step_s=8.0)  # 2 cores at 224
    assert after < 60, after
    assert "over an hour on a CPU" in line and f"{cpu.name}: {cpu.command}," in line, line
    assert GPU_INSTALL in line
    assert "(about" not in line.split(cpu.name)[1]  # its time would be a guess: none is given


def test_a_run_under_an_hour_or_on_a_gpu_names_no_other_way(monkeypatch):
    cpu = RECIPES["fashion_nin.cpu"]
    quick, _ = slow_cpu_line(monkeypatch, command_workload("fashion_nin"), step_s=0.05)
    on_gpu, _ = slow_cpu_line(monkeypatch, command_workload("fashion_nin", platform="gpu"), step_s=8.0)
    for line in (quick, on_gpu):
        assert cpu.command not in line and GPU_INSTALL not in line, line


def test_a_run_without_a_cpu_recipe_is_told_to_shorten_it_or_use_a_gpu(monkeypatch):
    """The --cpu run itself, and recipes that have no CPU-sized variant."""
    for name in ("fashion_nin.cpu", "mnist_lenet", "fashion_vgg", "video_nin"):
        line, _ = slow_cpu_line(monkeypatch, command_workload(name), step_s=30.0)
        assert "--cpu" not in line and "--epochs" in line and GPU_INSTALL in line, line


def test_where_an_epoch_is_one_program_the_line_comes_after_the_first_epoch(capsys):
    """No step is reported from a fused epoch (a GPU): the first record gives the times."""
    clock = FakeClock()
    work = Workload(10, 128, TEST_EXAMPLES, "gpu", "NVIDIA H100")
    console = Console(10, work=work, clock=clock)
    console.compiling()
    console.epoch_started(1, None)
    clock.now += 120.0  # the compiles, then the epoch
    console.epoch(record(1, train_s=50.0, eval_s=10.0))
    out = capsys.readouterr().out
    assert "run: about 9 min left" in out  # 9 epochs of 60 s
    [line] = expected_lines(out)
    assert line == ("expected: about 11 min for 10 epochs on NVIDIA H100 (60 s an epoch, "
                    "as the last epoch took)"), line  # 120 s done, 540 s to come


def record(epoch: int, train_s: float, eval_s: float) -> dict:
    return {"epoch": epoch, "train_loss": 1.0, "train_acc": 0.5, "test_loss": 1.0,
            "test_acc": 0.5, "lr": 0.1, "epoch_time_s": train_s + eval_s,
            "examples_per_s": 100.0, "train_time_s": train_s, "eval_time_s": eval_s}


def test_the_time_left_counts_the_rest_of_this_epoch_its_evaluation_and_the_epochs_after():
    cost = EpochCost(train_s=100.0, eval_s=20.0, measured=True)
    assert seconds_left(cost, 2, share_trained=0.25) == 75 + 20 + 2 * 120
    assert seconds_left(cost, 2) == 240


def test_the_step_time_waits_for_enough_steps_after_the_first():
    assert step_seconds((0.0, 1), (2.0, 3)) is None
    assert step_seconds((0.0, 1), (estimate.MEASURE_STEPS, 1 + estimate.MEASURE_STEPS)) == 1.0
    assert step_seconds((0.0, 1), (50.0, 2)) == 50.0  # one slow step is enough


def test_durations_read_as_a_person_says_them():
    assert [duration_text(s) for s in (42, 25 * 60, 11 * 3600 + 5 * 60)] == \
        ["42 s", "25 min", "11 h 5 min"]
    assert clock_text(10 * 3600 + 42 * 60 + 5) == "10:42:05"


def test_the_gpu_install_named_is_the_project_s_own():
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    assert "cuda12" in extras and GPU_INSTALL == 'pip install -e ".[cuda12]"'
    assert ".[dev,cuda12]" in (ROOT / "README.md").read_text()
