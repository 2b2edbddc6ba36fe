"""Every option's range is declared once, on the option, and every recipe command checks it: this
walks all options of all recipe commands with values just outside each declared range."""
import math

import pytest

from jaxnin.cli import in_flags
from jaxnin.errors import JaxninError
from jaxnin.experiments import fashion_nin, fashion_vgg, mnist_lenet, video_nin
from jaxnin.models import model_class
from jaxnin.options import flag_fields, value_type

COMMANDS = {"fashion_nin": fashion_nin.RECIPE, "fashion_vgg": fashion_vgg.RECIPE,
            "mnist_lenet": mnist_lenet.RECIPE, "video_nin": video_nin.RECIPE}


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


def cases():
    for name, command in COMMANDS.items():
        classes = [type(command.defaults), model_class(command.defaults.model)]
        classes += [command.data_flags] if command.data_flags else []
        for cls in classes:
            for field in flag_fields(cls):
                if field.metadata["within"] is None:
                    continue
                convert = field.metadata["convert"] or (lambda v: v)
                for value in outside(field):
                    if convert(value) is None:  # a value that means "none" (--resize 0)
                        continue
                    yield pytest.param(command, field.name, value, id=f"{name}-{field.name}-{value}")


@pytest.mark.parametrize("command, field, value", list(cases()))
def test_a_value_outside_a_declared_range_is_refused_naming_the_flag(command, field, value):
    parser = command.parser()
    flag = "--" + field.replace("_", "-")
    with pytest.raises(JaxninError) as refused:
        # --flag=value: argparse takes "-1e-06" after a space for a flag, not a number
        command.config(parser.parse_args([f"{flag}={value!r}"]))
    said = in_flags(str(refused.value))
    assert f"{flag} " in said and "\n" not in said, said


def test_every_numeric_option_declares_a_range():
    for command in COMMANDS.values():
        for cls in (type(command.defaults), model_class(command.defaults.model)):
            for field in flag_fields(cls):
                if value_type(field) in (int, float) and field.name != "head_bias":
                    assert field.metadata["within"] is not None, (cls.__name__, field.name)
