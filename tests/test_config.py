"""One description of a run: each option declared once, every recipe's command line made from it
(issue 15)."""
import dataclasses
import re

import pytest

from jaxnin.errors import JaxninError
from jaxnin.experiments import fashion_nin, fashion_vgg, mnist_lenet, nin_ablation, video_nin
from jaxnin.train.config import NamedConfig, TrainConfig, option

RECIPES = (fashion_nin, fashion_vgg, mnist_lenet, video_nin)


@dataclasses.dataclass(frozen=True)
class WithWarmup(TrainConfig):
    """TrainConfig with one more option, declared in this one line below."""
    warmup_epochs: int = option(0, "linear lr warm-up over this many epochs")


@pytest.mark.parametrize("module", RECIPES, ids=lambda m: m.__name__.rsplit(".", 1)[1])
def test_a_new_option_is_one_line_and_every_recipe_takes_it(module):
    defaults = WithWarmup(**{f.name: getattr(module.RECIPE.defaults, f.name)
                             for f in dataclasses.fields(TrainConfig)})
    recipe = dataclasses.replace(module.RECIPE, defaults=defaults)
    text = recipe.parser().format_help()
    assert "--warmup-epochs WARMUP_EPOCHS" in text
    assert _flattened(text).count("linear lr warm-up over this many epochs (default: 0)") == 1
    config = recipe.config(recipe.parser().parse_args(["--warmup-epochs", "2"]))
    assert config.warmup_epochs == 2 and config.to_json()["warmup_epochs"] == 2
    assert recipe.config(recipe.parser().parse_args([])).warmup_epochs == 0


@pytest.mark.parametrize("module, epochs", [(fashion_nin, 10), (fashion_vgg, 3),
                                            (mnist_lenet, 50), (video_nin, 300)])
def test_help_shows_each_recipe_s_own_default_once(module, epochs):
    text = _flattened(module.RECIPE.parser().format_help())
    assert f"training epochs (default: {epochs})" in text
    assert "(default: None)" not in text and "[" + str(epochs) + "]" not in text
    for line in _option_entries(text):
        assert line.count("(default:") <= 1, line


def test_model_and_data_options_show_the_recipe_s_values():
    vgg = _flattened(fashion_vgg.RECIPE.parser().format_help())
    assert "after each hidden Dense (the seed's is 0) (default: 0.0)" in vgg
    video = _flattened(video_nin.RECIPE.parser().format_help())
    assert "--clips-dir DATA_DIR, --data-dir DATA_DIR" in video
    assert "stacked as channels (default: 16)" in video
    nin = _flattened(fashion_nin.RECIPE.parser().format_help())
    assert "1x1 convs per NiN block (default: 2)" in nin


def test_flags_keep_their_meaning():
    parse = lambda recipe, argv: recipe.config(recipe.parser().parse_args(argv))
    assert parse(fashion_nin.RECIPE, ["--resize", "0"]).resize is None  # 0 keeps 28x28
    assert parse(fashion_nin.RECIPE, ["--shard-params"]).shard_params is True
    assert parse(fashion_nin.RECIPE, []).shard_params is False
    assert parse(fashion_nin.RECIPE, ["--num-1x1", "1", "--head", "graded"]).model_options == {
        "num_1x1": 1, "head": "graded"}
    clips = parse(video_nin.RECIPE, ["--clips-dir", "/x", "--frames", "8"])
    assert clips.data_dir == "/x" and clips.data_options["frames"] == 8
    assert parse(mnist_lenet.RECIPE, ["--dense-activations"]).model_options == {
        "dense_activations": True}


def test_the_ablation_s_variants_are_named_configs():
    assert all(isinstance(v, NamedConfig) and isinstance(v.config, TrainConfig)
               for v in nin_ablation.VARIANTS)
    assert {v.name for v in nin_ablation.VARIANTS} >= {"a1", "a2", "b", "c", "d", "e"}


def _flattened(help_text: str) -> str:
    """argparse wraps help at the terminal's width: one space for every run of whitespace."""
    return re.sub(r"\s+", " ", help_text)


def _option_entries(text: str) -> list[str]:
    return re.split(r" (?=--[a-z])", text)


def test_a_batch_larger_than_the_data_names_what_to_change():
    with pytest.raises(JaxninError, match="larger than the 10 training examples the data holds: "
                                          "lower it$"):
        TrainConfig(model="lenet", batch_size=32).validate(num_train=10)  # e.g. a small clips folder
    with pytest.raises(JaxninError, match="lower it or raise `limit_train`"):
        TrainConfig(model="lenet", batch_size=32, limit_train=10).validate(num_train=10)
