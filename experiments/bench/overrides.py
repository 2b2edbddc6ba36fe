"""Run-config overrides for the tools: `--set FIELD=VALUE`, checked by TrainConfig itself.

The bench and the acceptance runner train what a recipe (jaxnin.recipes) trains, changed by a
dict of TrainConfig fields. Nothing here lists the fields: a new TrainConfig field is a valid
`--set` key the day it is declared, and a renamed one is refused, naming the valid keys.

VALUE is read as JSON where it parses (1, 0.5, true, null, {"num_1x1": 1}, ["best_acc"]), else
as the plain string (adam, cosine, /data). `model_options` and `data_options` are merged into
the recipe's own (so `--set 'model_options={"width_divisor": 8}'` keeps VGG's dropout 0).
"""
import dataclasses
import json
from typing import Any, Iterable, Mapping

from jaxnin.errors import JaxninError
from jaxnin.options import value_type
from jaxnin.train.config import TrainConfig

MERGED = ("model_options", "data_options")  # dicts merged into the base's, not replacing it


def field_names() -> list[str]:
    return [f.name for f in dataclasses.fields(TrainConfig)]


def parse(texts: Iterable[str] | None, flag: str = "--set") -> dict[str, Any]:
    """{field: value} of `FIELD=VALUE` texts; a later text of one field wins (dicts merge)."""
    fields = {f.name: f for f in dataclasses.fields(TrainConfig)}
    overrides: dict[str, Any] = {}
    for text in texts or ():
        name, sep, raw = text.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or name not in fields:
            raise JaxninError(f"{flag} {text!r}: give FIELD=VALUE with FIELD one of "
                              f"{', '.join(fields)}")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        kind = value_type(fields[name])
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if kind is str and value is not None and not isinstance(value, str):
            value = raw  # e.g. data_dir=2026: a folder's name, not a number
        if name in MERGED and name in overrides:
            value = {**overrides[name], **value}
        overrides[name] = value
    return overrides


def apply(config: TrainConfig, overrides: Mapping[str, Any], flag: str = "--set") -> TrainConfig:
    """`config` with `overrides` (model_options/data_options merged), checked by TrainConfig;
    a bad value raises a one-line JaxninError naming the field."""
    changes = dict(overrides)
    for name in MERGED:
        if name in changes:
            if not isinstance(changes[name], Mapping):
                raise JaxninError(f"{flag} {name}: give a JSON object, got {changes[name]!r}")
            changes[name] = {**getattr(config, name), **changes[name]}
    try:
        return config.replace(**changes)
    except JaxninError:
        raise
    except (TypeError, ValueError) as err:
        raise JaxninError(f"{flag} {', '.join(f'{k}={v!r}' for k, v in overrides.items())}: "
                          f"{err}") from None


def write_run_json(config: TrainConfig, path) -> None:
    """`config` as a run.json that `python -m jaxnin.experiments.<recipe> --from PATH` reads
    (only its "config" key is read)."""
    from pathlib import Path

    from jaxnin.files import write_json

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, {"config": config.to_json()})
