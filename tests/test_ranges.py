"""Every option's range is declared once, on the option, and every command checks it: this
walks all options of all commands (the recipes' and the tools') with values just outside each
declared range, and every numeric flag of every command must have a declared range."""
import math
from pathlib import Path

import pytest

from experiments.acceptance import cli as acceptance
from experiments.bench import cli as bench
from jaxnin import export_onnx, summary
from jaxnin.data import make_sample_clips
from jaxnin.cli import DistributedOptions, in_flags, initialize_from_flags
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
UNBOUNDED = {"head_bias"}  # NiN's initial bias: any real number


def outside(field) -> list:
    """Values just outside the field's declared range (and NaN for a float)."""
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
            if field.metadata["within"] is None:
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


def typed(field: str, value) -> str:
    # --flag=value: argparse takes "-1e-06" after a space for a flag, not a number
    return f"{flag_of(field)}={value!r}"


def refused(call, field: str) -> None:
    with pytest.raises(JaxninError) as refusal:
        call()
    said, flag = in_flags(str(refusal.value)), flag_of(field)
    # "must be": the range's words (--gamma 0 has its own, which says what to do instead)
    assert (f"{flag} must be" in said or said.startswith(f"{flag} ")) and "\n" not in said, said


@pytest.mark.parametrize("command, field, value", [
    pytest.param(command, field, value, id=f"{name}-{field}-{value}")
    for name, command in COMMANDS.items() for field, value in out_of_range(recipe_classes(command))])
def test_a_value_outside_a_declared_range_is_refused_naming_the_flag(command, field, value):
    def start():
        args = command.parser().parse_args([typed(field, value)])
        command.config(args)
        initialize_from_flags(args)  # as the command does, before anything touches a device
    refused(start, field)


@pytest.mark.parametrize("tool, field, value", [
    pytest.param(tool, field, value, id=f"{tool}-{field}-{value}")
    for tool, (_, _, classes, _) in TOOLS.items() for field, value in out_of_range(classes)])
def test_a_tool_refuses_a_value_outside_a_declared_range_before_any_work(tool, field, value):
    main, _, _, later = TOOLS[tool]
    refused(lambda: main([*later, typed(field, value)]), field)


def parsers():
    for name, command in COMMANDS.items():
        yield name, command.parser(), recipe_classes(command)
    for name, (_, parser, classes, _) in TOOLS.items():
        if parser is not None:
            yield name, parser, classes + ([model_class("nin")] if name == "summary" else [])


def test_every_numeric_flag_of_every_command_declares_a_range():
    for name, parser, classes in parsers():
        ranged = {f.name for cls in classes for f in flag_fields(cls) if f.metadata["within"]}
        for action in parser._actions:
            if action.type in (int, float) and action.dest not in UNBOUNDED:
                assert action.dest in ranged, (name, action.dest)
