"""Every option's range is declared once, on the option, and every command checks it: this
walks all options of all commands (the recipes', the tools' and the bench's measurement
scripts') with values just outside each declared range (an empty path for a path), every
numeric flag of every command must have a declared range, every flag taking text must be a
path or say why not, and every entry point under jaxnin/ and experiments/ is walked."""
import argparse
import ast
import dataclasses
import json
import math
import re
import subprocess
from pathlib import Path

import pytest

from experiments.acceptance import cli as acceptance
from experiments.bench import cli as bench
from experiments.bench import (cpu_convolutions, cpu_flags, cpu_levers, cpu_rounds, first_epoch,
                               lenet_conv_probe, lenet_cpu_epoch, nin_kernels)
from jaxnin import export_onnx, summary
from jaxnin.data import make_sample_clips
from jaxnin.cli import DistributedOptions, in_flags, initialize_from_flags, options_from, path_arg
from jaxnin.errors import JaxninError
from jaxnin.experiments import (fashion_nin, fashion_vgg, mnist_lenet, nin_ablation, predict,
                                video_nin)
from jaxnin.models import model_class
from jaxnin.options import flag_fields, value_type
from jaxnin.report import seed_table

COMMANDS = {"fashion_nin": fashion_nin.RECIPE, "fashion_vgg": fashion_vgg.RECIPE,
            "mnist_lenet": mnist_lenet.RECIPE, "video_nin": video_nin.RECIPE}
MISSING = "/nonexistent/run"
EXISTING = str(Path(__file__).parent)  # an OUT_DIR that make_sample_clips refuses: it exists
# tool -> (its main, its parser, the classes declaring its options, arguments that fail in
# another way once the options are checked: a tool that checked too late says that instead).
TOOLS = {
    "bench": (bench.main, bench.parser(), [bench.BenchOptions], ["--models", "none"]),
    "acceptance": (acceptance.main, acceptance._parser(), [acceptance.AcceptanceOptions],
                   ["--parts", "none"]),
    "predict": (predict.main, predict._parser(), [predict.PredictOptions], [MISSING]),
    "export_onnx": (export_onnx.main, export_onnx._parser(), [export_onnx.ExportOptions],
                    [MISSING]),
    "summary": (summary.main, summary._parser("nin"), [summary.SummaryOptions], ["nin"]),
    "seed_table": (seed_table.main, None, [seed_table.SeedTableOptions], [MISSING]),
    "nin_ablation": (nin_ablation.main, nin_ablation._parser(), [nin_ablation.AblationOptions],
                     ["--variants", "none"]),
    "make_sample_clips": (make_sample_clips.main, make_sample_clips.parser(),
                          [make_sample_clips.SampleClipOptions], [EXISTING]),
}
# The bench's measurement scripts (developer tools, run from a checkout): module -> the classes
# declaring its options. Each main checks them, then calls the script's one work function, WORK.
SCRIPTS = {
    cpu_flags: [cpu_flags.FlagsOptions],
    cpu_levers: [cpu_levers.LeversOptions],
    first_epoch: [first_epoch.FirstEpochOptions],
    nin_kernels: [nin_kernels.KernelsOptions],
    cpu_convolutions: [cpu_convolutions.ConvolutionsOptions],
    lenet_cpu_epoch: [lenet_cpu_epoch.EpochOptions],
    cpu_rounds: [cpu_rounds.RoundsOptions],  # DIR only, no number
    lenet_conv_probe: [lenet_conv_probe.ProbeOptions],  # no option at all
}
WORK = "run"
UNBOUNDED = {"head_bias"}  # NiN's initial bias: any real number
# Flags taking text that names no file or folder: lists of names, a shape, an address.
NOT_PATHS = {"batch_sizes", "compile_mode", "coordinator", "dtypes", "input_shape", "models",
             "parts", "precisions", "runs", "set", "torch_variants", "tta_recipes", "variants"}


def ranged(field) -> bool:
    return field.metadata["within"] is not None or field.metadata["path"]


def outside(field) -> list:
    """Values just outside the field's declared range (and NaN for a float); for a path, the
    empty one (which must not read as "not given")."""
    if field.metadata["path"]:
        return [""]
    within, kind = field.metadata["within"], value_type(field)
    step = 1 if kind is int else 1e-6
    values = []
    if within.low is not None:
        values.append(within.low if within.low_open else within.low - step)
    if within.high is not None:
        values.append(within.high if within.high_open else within.high + step)
    return values + ([math.nan] if kind is float else [])


def out_of_range(classes):
    """(field name, value) for each value just outside each declared range of `classes`."""
    for cls in classes:
        for field in flag_fields(cls):
            if not ranged(field):
                continue
            convert = field.metadata["convert"] or (lambda v: v)
            for value in outside(field):
                if convert(value) is not None:  # a value that means "none" (--resize 0) is not
                    yield field.name, value


def recipe_classes(command) -> list:
    return [type(command.defaults), model_class(command.defaults.model), DistributedOptions,
            *([command.data_flags] if command.data_flags else [])]


def flag_of(field: str) -> str:
    return "--" + field.replace("_", "-")


def typed(field: str, value) -> list[str]:
    # after a space, as typed most often: -1e-06 and -inf must reach the range as values
    return [flag_of(field), str(value)]


def names_the_flag(said: str, flag: str) -> bool:
    """The range's words (--gamma 0 has its own, which says what to do instead), or, for an
    empty path, argparse's words for what path_arg refuses (naming the flag's aliases too);
    not any argparse error ("expected one argument" is no refusal of the value)."""
    return "\n" not in said and (f"{flag} must be" in said or said.startswith(f"{flag} ") or
                                 re.match(rf"argument (\S+/)?{flag}: an empty path ", said)
                                 is not None)


def refused(call, field: str) -> None:
    with pytest.raises(JaxninError) as refusal:
        call()
    said = in_flags(str(refusal.value))
    assert names_the_flag(said, flag_of(field)), said


@pytest.mark.parametrize("command, field, value", [
    pytest.param(command, field, value, id=f"{name}-{field}-{value}")
    for name, command in COMMANDS.items() for field, value in out_of_range(recipe_classes(command))])
def test_a_value_outside_a_declared_range_is_refused_naming_the_flag(command, field, value):
    def start():
        args = command.parser().parse_args(typed(field, value))
        command.config(args)
        initialize_from_flags(args)  # as the command does, before anything touches a device
    refused(start, field)


@pytest.mark.parametrize("tool, field, value", [
    pytest.param(tool, field, value, id=f"{tool}-{field}-{value}")
    for tool, (_, _, classes, _) in TOOLS.items() for field, value in out_of_range(classes)])
def test_a_tool_refuses_a_value_outside_a_declared_range_before_any_work(tool, field, value):
    main, _, _, later = TOOLS[tool]
    refused(lambda: main([*later, *typed(field, value)]), field)


def work_started(*args, **kwargs):
    raise AssertionError("work started")


@pytest.mark.parametrize("script, field, value", [
    pytest.param(script, field, value, id=f"{script.__name__.rsplit('.', 1)[1]}-{field}-{value}")
    for script, classes in SCRIPTS.items() for field, value in out_of_range(classes)])
def test_a_script_refuses_a_value_outside_a_declared_range_before_any_work(script, field, value,
                                                                            monkeypatch):
    monkeypatch.setattr(script, WORK, work_started)  # a script that checks too late fails here
    with pytest.raises(JaxninError) as refusal:
        script.main(typed(field, value))
    said = in_flags(str(refusal.value))
    assert names_the_flag(said, flag_of(field)), said


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda script: script.__name__)
def test_a_script_with_values_in_range_starts_its_work_function(script, monkeypatch):
    """WORK is where each script's work is: with in-range values main gets there (so that the
    test above, which patches it, stands in front of all of a script's work)."""
    calls = []
    monkeypatch.setattr(script, WORK, lambda *args: calls.append(args))
    assert script.main([EXISTING] if script is cpu_rounds else []) == 0
    assert len(calls) == 1


def test_cpu_rounds_refuses_a_missing_folder_before_reading_anything(monkeypatch):
    monkeypatch.setattr(cpu_rounds, WORK, work_started)
    for argv, said in (([], "required: dir"), ([MISSING], "is not a folder")):
        with pytest.raises(JaxninError, match=said):
            cpu_rounds.main(argv)


def test_the_probe_takes_no_options_and_says_so(monkeypatch, capsys):
    monkeypatch.setattr(lenet_conv_probe, WORK, work_started)
    with pytest.raises(SystemExit) as done:
        lenet_conv_probe.main(["--help"])
    assert done.value.code == 0 and "usage:" in capsys.readouterr().out
    with pytest.raises(JaxninError, match="unrecognized arguments: --steps"):
        lenet_conv_probe.main(["--steps", "5"])


def children(script, monkeypatch, stdout: dict) -> list[list[str]]:
    """The argv (after `python -m MODULE`) of each child `script` spawns; each child answers
    `stdout` as its JSON line."""
    spawned = []

    def spawn(argv, **kwargs):
        assert argv[1:3] == ["-m", script.__name__]
        spawned.append(argv[3:])
        return subprocess.CompletedProcess(argv, 0, json.dumps(stdout) + "\n", "")

    if hasattr(script, "child_stdout"):  # experiments.bench.worker's, one line if it fails
        monkeypatch.setattr(script, "child_stdout", lambda argv: spawn(argv).stdout)
    else:
        monkeypatch.setattr(script.subprocess, "run", spawn)
    return spawned


def as_child(script, argv, monkeypatch):
    """The options a child of `script` runs with, given `argv`: checked as any command line."""
    seen = []
    monkeypatch.setattr(script, WORK, lambda options, *rest: seen.append(options))
    assert script.main(argv) == 0
    return seen[0]


def test_the_scripts_children_take_the_arguments_their_parent_gives_them(monkeypatch):
    spawned = children(cpu_flags, monkeypatch, {"step_s": 1.0, "warmup_s": 1.0, "digest": 0.0})
    for name in cpu_flags.VARIANTS:
        for model in cpu_flags.RECIPES:
            cpu_flags.run_variant(name, model, 16)
            options = as_child(cpu_flags, spawned.pop(), monkeypatch)
            assert (options.worker, options.variants, options.steps(model)) == (model, (name,), 16)

    spawned = children(lenet_cpu_epoch, monkeypatch, {"ms_per_step": 1.0})
    lenet_cpu_epoch.run(lenet_cpu_epoch.EpochOptions(variants=",".join(lenet_cpu_epoch.VARIANTS),
                                                     rounds=1, steps=7, repeats=3))
    assert len(spawned) == len(lenet_cpu_epoch.VARIANTS)
    for variant, argv in zip(lenet_cpu_epoch.VARIANTS, spawned):
        options = as_child(lenet_cpu_epoch, argv, monkeypatch)
        assert (options.one, options.steps, options.repeats) == (variant, 7, 3)

    argv = ["--model", "lenet", "--resize=32", "--batch-size=4", "--steps=2", "--rounds=1"]
    spawned = children(cpu_convolutions, monkeypatch, {"ms_per_step": 1.0})
    parent = options_from(cpu_convolutions.ConvolutionsOptions,
                          cpu_convolutions.parser().parse_args(argv))
    cpu_convolutions.run(parent, argv)
    assert len(spawned) == len(cpu_convolutions.CPU_CONVOLUTIONS)
    for choice, child in zip(cpu_convolutions.CPU_CONVOLUTIONS, spawned):
        assert as_child(cpu_convolutions, child, monkeypatch) == dataclasses.replace(parent,
                                                                                     one=choice)


def parsers():
    for name, command in COMMANDS.items():
        yield name, command.parser(), recipe_classes(command)
    for name, (_, parser, classes, _) in TOOLS.items():
        if parser is not None:
            yield name, parser, classes + ([model_class("nin")] if name == "summary" else [])
    for script, classes in SCRIPTS.items():
        yield script.__name__, script.parser(), classes


def test_every_flag_taking_text_is_a_path_or_says_why_not():
    """A path is declared (option(path=True), or type=path_arg by hand) so that an empty one is
    refused; a new flag taking text must be one, or be added to NOT_PATHS."""
    for name, parser, _ in parsers():
        for action in parser._actions:
            if (action.nargs != 0 and not action.choices and action.type in (None, str)
                    and not isinstance(action, argparse._HelpAction)):
                assert action.dest in NOT_PATHS, (name, action.dest)


@pytest.mark.parametrize("name, parser, action", [
    pytest.param(name, parser, action, id=f"{name.rsplit('.', 1)[-1]}-{action.dest}")
    for name, parser, _ in parsers() for action in parser._actions if action.type is path_arg])
def test_every_path_argument_refuses_an_empty_one_naming_it(name, parser, action):
    """The walk above reaches the declared options; this also the paths declared by hand
    (--workdir, --from, RUN_DIR, ...), each given as an empty string."""
    argv = [action.option_strings[-1], ""] if action.option_strings else [""]
    with pytest.raises(JaxninError) as refusal:
        parser.parse_args(argv)
    said = str(refusal.value)
    named = "/".join(action.option_strings) or action.dest
    assert said.startswith(f"argument {named}: an empty path") and "\n" not in said, said


@pytest.mark.parametrize("value", ["-inf", "-Infinity", "-nan", "-1e-06", "-.5"])
def test_a_negative_value_after_a_space_is_a_value_not_a_flag(value):
    """`--lr -inf` reaches the range's check (argparse alone took it for an unknown flag:
    "expected one argument")."""
    command = COMMANDS["mnist_lenet"]
    refused(lambda: command.config(command.parser().parse_args(["--lr", value])), "lr")


def test_seed_table_refuses_a_run_named_without_its_folder():
    with pytest.raises(JaxninError, match="'x=' names no run folder"):
        seed_table.main(["x="])


def test_every_numeric_flag_of_every_command_declares_a_range():
    for name, parser, classes in parsers():
        ranged = {f.name for cls in classes for f in flag_fields(cls) if f.metadata["within"]}
        for action in parser._actions:
            if action.type in (int, float) and action.dest not in UNBOUNDED:
                assert action.dest in ranged, (name, action.dest)


# --- coverage that cannot go stale: every entry point is walked above, or takes no number -----

ROOT = Path(__file__).resolve().parents[1]
# Entry points that take no numeric option, so no range to walk (each is still an entry point:
# the test fails when one goes, so that this list stays true).
NO_NUMBERS = {
    "jaxnin.__main__",  # `python -m jaxnin` prints the recipes and tools; it takes no argument
    "experiments.bench.__main__",  # hands its arguments to experiments.bench.cli ("bench")
    "experiments.acceptance.__main__",  # the same for experiments.acceptance.cli ("acceptance")
    # The bench's child: one job as JSON, built by the bench from its checked options; no
    # person types it.
    "experiments.bench.worker",
}


def python_files():
    for top in ("jaxnin", "experiments"):
        yield from sorted((ROOT / top).rglob("*.py"))


def entry_points() -> set[str]:
    """The modules that run as commands: a `__main__.py` (python -m PACKAGE), or a module with
    an `if __name__ == "__main__":` block."""
    found = set()
    for path in python_files():
        tree = ast.parse(path.read_text(), str(path))
        if path.name == "__main__.py" or any(
                isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'"
                for node in tree.body):
            found.add(".".join(path.relative_to(ROOT).with_suffix("").parts))
    return found


def walked_modules() -> set[str]:
    return ({command.prog for command in COMMANDS.values()}  # jaxnin.experiments.<recipe>
            | {main.__module__ for main, *_ in TOOLS.values()}
            | {script.__name__ for script in SCRIPTS})


def test_every_entry_point_is_walked_or_takes_no_number():
    found = entry_points()
    assert "jaxnin.summary" in found and "experiments.bench.cpu_rounds" in found  # the finder
    assert NO_NUMBERS <= found, f"no longer entry points: {NO_NUMBERS - found}"
    unwalked = found - walked_modules() - NO_NUMBERS
    assert not unwalked, (f"entry points outside test_ranges' walks: {sorted(unwalked)}; add "
                          "each to COMMANDS, TOOLS or SCRIPTS (or, with no numeric option, to "
                          "NO_NUMBERS, saying why)")


def test_no_flag_is_typed_a_number_outside_an_option():
    """Numbers come onto a command line only from option fields (jaxnin.cli.add_flags), where
    their range is declared: no call passes `type=int` or `type=float` (add_argument's, or any
    alias of it). No exception."""
    numeric = []
    for path in python_files():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Call) and any(
                    k.arg == "type" and isinstance(k.value, ast.Name)
                    and k.value.id in ("int", "float") for k in node.keywords):
                numeric.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert not numeric, f"numbers typed without a declared range: {numeric}"
