"""The bench and the acceptance runner train the library's own description of a run: for every
TrainConfig field, a non-default override reaches a benchmarked job's config and the config an
accepted run's recipe command trains (read back through that command's own parser), with
nothing in the tools listing the fields. A field added to TrainConfig is covered here as soon
as it is declared (a value is derived from its choices, range or type), and a renamed one
fails here, not in a GPU slot. Nothing is trained."""
import dataclasses
import importlib
import json

import pytest

from experiments.acceptance import plan, runner
from experiments.bench import cli, policy
from jaxnin.options import value_type
from jaxnin.recipes import recipe
from jaxnin.train.config import TrainConfig

BENCH_RECIPES = [recipe(name) for name in (*cli.RECIPES.values(),
                                           *(r for r, _ in cli.TTA_RECIPES.values()))]
# Fields whose other value their declaration does not give (no choices, range or bool), each
# with one that every tool's recipes accept; None: not overridden by these tools, and why.
GIVEN = {
    "model": None,  # which model is the tool's own choice (--models; a plan entry's recipe)
    "dataset": "mnist",
    "data_dir": "/elsewhere/data",
    "model_options": {"num_1x1": 1},  # NiN's: the NiN runs only (other models refuse it)
    "data_options": {"frames": 2},  # the clips': the video run only (image sets refuse any)
    "best": ["best_acc"],
}
NIN_ONLY, VIDEO_ONLY = {"model_options"}, {"data_options"}


def other_value(field: dataclasses.Field, bases: list[TrainConfig]):
    """A valid value of `field` that none of `bases` holds."""
    if field.name in GIVEN:
        return GIVEN[field.name]
    taken = [getattr(b, field.name) for b in bases]
    meta, kind = field.metadata, value_type(field)
    if meta["choices"]:
        # Another than every base's, else than the first's (the three recipes take all three
        # optimizers: any value is some recipe's own).
        return next((c for c in meta["choices"] if c not in taken),
                    next(c for c in meta["choices"] if c != taken[0]))
    if kind is bool:
        assert len(set(taken)) == 1, field.name
        return not taken[0]
    if kind in (int, float):
        within = meta["within"]
        for candidate in (2, 3, 0.5, 0.25, 7, 1):
            value = kind(candidate)
            if value == candidate and value not in taken and (within is None
                                                              or within.contains(value)):
                return value
    raise AssertionError(f"TrainConfig.{field.name}: no value derived from its declaration; "
                         "give one in GIVEN")


FIELDS = [f for f in dataclasses.fields(TrainConfig) if GIVEN.get(f.name, 0) is not None]


def as_json(name: str, value):
    return TrainConfig.from_json({**recipe("fashion_nin").to_json(), "model_options": {},
                                  name: value}).to_json()[name] if name not in (
        "data_options",) else value


@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_every_field_override_reaches_every_benchmarked_job(field):
    value = other_value(field, BENCH_RECIPES)
    text = value if isinstance(value, str) else json.dumps(value)
    if field.name in VIDEO_ONLY:
        pytest.skip("the bench trains image recipes, which take no data_options")
    models = ("--models", "nin", "--tta-recipes", "nin") if field.name in NIN_ONLY else ()
    settings = cli.Settings.from_args(cli.parser().parse_args(
        [*models, "--set", f"{field.name}={text}"]))
    jobs = cli.throughput_jobs(settings)
    assert {j["side"] for j in jobs} == {"jaxnin", "torch"} and settings.tta_configs
    configs = [j["config"] for j in jobs] + [c.to_json() for c in settings.tta_configs.values()]
    expected = as_json(field.name, value)
    for config in configs:
        got = config[field.name]
        assert (expected.items() <= got.items() if isinstance(expected, dict)
                else got == expected), (field.name, got)
    # The PyTorch side places every field: it trains it, runs its only value, or has no use
    # for it (a new field must be placed in policy's tables).
    placed = (*policy.TORCH_MIRRORED, *policy.TORCH_ONLY_VALUE, *policy.TORCH_IRRELEVANT)
    assert field.name in placed and len(placed) == len(set(placed))


def accepted_run(field_name: str, tiny: bool) -> plan.Run:
    wanted = ("smoke-video" if field_name in VIDEO_ONLY else "main-seed0")
    return next(r for r in plan.plan(tiny) if r.key == wanted)


@pytest.mark.parametrize("tiny", (False, True), ids=("full", "tiny"))
@pytest.mark.parametrize("field", FIELDS, ids=lambda f: f.name)
def test_every_field_override_reaches_an_accepted_run(field, tiny, tmp_path):
    """A plan entry with the override: the runner's config file holds it, and the recipe
    command the runner starts (`--from` that file) trains it."""
    run = accepted_run(field.name, tiny)
    name, changes = run.config
    value = other_value(field, [run.train_config()])
    run = dataclasses.replace(run, config=(name, {**changes, field.name: value}))
    ctx = runner.Context(out=tmp_path, scratch=tmp_path, kind="cpu", date="today",
                         data_dir="/the/data", env={})
    workdir = tmp_path / run.key
    path = runner.config_path(run, workdir)
    runner.write_config(run, path)
    expected = as_json(field.name, value)
    stored = json.loads(path.read_text())["config"][field.name]
    assert (expected.items() <= stored.items() if isinstance(expected, dict)
            else stored == expected)
    [command] = [runner.command_line(c, workdir, tmp_path, ctx, path) for c in run.commands]
    assert command[command.index("--from") + 1] == str(path)
    module = importlib.import_module(command[2])
    trained = module.RECIPE.config(module.RECIPE.parser().parse_args(command[3:])).to_json()
    if field.name == "data_dir" and "--data-dir" in command:
        # The runner's --data-dir is where this host keeps the data: it wins, by design.
        assert trained["data_dir"] == "/the/data"
    else:
        got = trained[field.name]
        assert expected.items() <= got.items() if isinstance(expected, dict) else got == expected


def test_a_bad_override_is_one_line_naming_the_field():
    from jaxnin.errors import JaxninError

    with pytest.raises(JaxninError, match="FIELD one of model, model_options"):
        cli.Settings.from_args(cli.parser().parse_args(["--set", "learning_rate=0.1"]))
    with pytest.raises(JaxninError, match="`lr`"):
        cli.Settings.from_args(cli.parser().parse_args(["--set", "lr=-1"]))
