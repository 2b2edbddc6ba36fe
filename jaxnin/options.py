"""Options: dataclass fields that carry their meaning and their range, declared once.

A training option (a field of TrainConfig), a model's option (a field of its Flax module) and
a dataset's option are each made by `option()`. From that one declaration come the field's
line in `help()` (`document`), its check (`check_values`), the command line's flag and its
help (jaxnin.cli), and its place in `run.json` (the dataclass itself). Nothing here knows of
argparse: errors name the field in backticks (`lr`), and command lines translate that to
their flag (--lr).
"""
import dataclasses
import math
import numbers
import types
from typing import Any, Callable

from jaxnin.errors import JaxninError


@dataclasses.dataclass(frozen=True)
class Range:
    """The values a number may take: `low` <= x (< x where `low_open`), x <= `high` (< x...)."""
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False

    def contains(self, value) -> bool:
        if self.low is not None and (value <= self.low if self.low_open else value < self.low):
            return False
        return self.high is None or (value < self.high if self.high_open else value <= self.high)

    def __str__(self) -> str:
        if self.high is None:
            return f"{'above' if self.low_open else 'at least'} {_number(self.low)}"
        if self.low is None:
            return f"{'below' if self.high_open else 'at most'} {_number(self.high)}"
        return (f"in {'(' if self.low_open else '['}{_number(self.low)}, {_number(self.high)}"
                f"{')' if self.high_open else ']'}")


def _number(value) -> str:
    """1 as 1, 2**31 - 1 as 2147483647, 0.5 as 0.5."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


INT32_MAX = 2**31 - 1  # step counters are int32 on the device
COUNT = Range(1, INT32_MAX)  # a number of things that must exist: epochs, examples, ...
POSITIVE = Range(0, low_open=True)
SEED = Range(0, 2**32 - 1)  # what jax.random.PRNGKey and NumPy's generators take


def option(default: Any = None, help: str = "", *, flag: bool = True,
           choices: tuple | None = None, within: Range | None = None,
           convert: Callable[[Any], Any] | None = None, path: bool = False,
           default_factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with its meaning (`help`) and the values it may take.

    `choices` lists the allowed values; `within` bounds a number (None is always allowed where
    the annotation allows it). `flag=False` keeps the field off the command line. `convert`
    maps a typed flag value to the stored one (`--resize 0` to None). `path=True` says the
    value names a file or folder: its flag refuses an empty one (jaxnin.cli.path_arg), which
    would otherwise read as "not given" or as the current folder.
    """
    metadata = {"help": help, "flag": flag, "choices": choices, "within": within,
                "convert": convert, "path": path, "option": True}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def option_fields(cls) -> list[dataclasses.Field]:
    """The fields of dataclass (or Flax module) `cls` that were declared with `option()`."""
    return [f for f in dataclasses.fields(cls) if f.metadata.get("option")]


def flag_fields(cls) -> list[dataclasses.Field]:
    """The option fields that have a command-line flag."""
    return [f for f in option_fields(cls) if f.metadata["flag"]]


def option_defaults(cls) -> dict:
    """{name: default} of `cls`' option fields that have a plain default."""
    return {f.name: f.default for f in option_fields(cls)
            if f.default is not dataclasses.MISSING}


def annotation_of(field: dataclasses.Field):
    """The field's annotation as a type, also where the module postpones annotations (then
    the annotation is a string such as "int | None", of builtin types only)."""
    return eval(field.type, {}) if isinstance(field.type, str) else field.type  # noqa: S307


def value_type(annotation) -> type:
    """int for `int` and `int | None`, and so on."""
    if isinstance(annotation, dataclasses.Field):
        annotation = annotation_of(annotation)
    if isinstance(annotation, types.UnionType):
        (annotation,) = [a for a in annotation.__args__ if a is not type(None)]
    return annotation


def check_value(field: dataclasses.Field, value) -> str | None:
    """Why `value` cannot be `field`'s, in words naming the field; None where it can."""
    meta, name = field.metadata, field.name
    annotation = annotation_of(field)
    kind = value_type(annotation)
    if value is None:
        return None if isinstance(annotation, types.UnionType) else f"`{name}` must be given"
    if kind in (int, float) and (isinstance(value, bool) or not isinstance(value, numbers.Real)
                                 or (kind is int and not isinstance(value, numbers.Integral))):
        return f"`{name}` must be {'an integer' if kind is int else 'a number'}, got {value!r}"
    if kind is float and not math.isfinite(value):
        return f"`{name}` must be a finite number, got {value}"
    if kind is bool and not isinstance(value, bool):
        return f"`{name}` must be True or False, got {value!r}"
    if meta.get("choices") and value not in meta["choices"]:
        return (f"`{name}` must be one of {', '.join(map(str, meta['choices']))}, "
                f"got {value!r}")
    within = meta.get("within")
    if within is not None and not within.contains(value):
        return f"`{name}` must be {within}, got {value}"
    return None


def check_values(obj, fields=None) -> None:
    """Raise a JaxninError naming the first option of `obj` whose value it may not take."""
    for field in fields if fields is not None else option_fields(type(obj)):
        problem = check_value(field, getattr(obj, field.name))
        if problem:
            raise JaxninError(problem)


def check_options(cls, options: dict, owner: str) -> None:
    """Refuse a {name: value} of options that `cls` does not declare, or values out of range."""
    fields = {f.name: f for f in option_fields(cls)}
    for name, value in options.items():
        if name not in fields:
            raise JaxninError(f"{owner} has no option `{name}`: its options are "
                              f"{', '.join(fields) or 'none'}")
        problem = check_value(fields[name], value)
        if problem:
            raise JaxninError(f"{owner}: {problem}")


class Documented(type):
    """Metaclass of option dataclasses: `help(cls)` lists every option field, subclasses' too.

    The class's own docstring is its introduction; the field lines are made from the fields
    each time they are asked for, so that an option added anywhere is documented at once.
    """

    @property
    def __doc__(cls):
        intro = next((c.__dict__["__doc__"] for c in cls.__mro__
                      if isinstance(c.__dict__.get("__doc__"), str)), "")
        return document(cls, intro) if dataclasses.is_dataclass(cls) else intro


def document(cls, intro: str) -> str:
    """`intro`, then one line per option field of `cls`: its meaning, values and default."""
    lines = [intro.rstrip(), "", "Attributes:"]
    for field in option_fields(cls):
        meta = field.metadata
        allowed = (f" One of {', '.join(map(str, meta['choices']))}." if meta["choices"] else
                   f" Must be {meta['within']}." if meta["within"] else "")
        lines.append(f"  {field.name}: {meta['help'] or '(no description)'}.{allowed}")
    return "\n".join(lines) + "\n"
