"""jaxnin as research code imports it: recipes as values, fit that returns a Run, a finished run
opened and scored, errors naming config fields, and options declared once."""
import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import jaxnin
from jaxnin.data.dataset import ImageDataset
from jaxnin.errors import JaxninError
from jaxnin.experiments import fashion_nin, mnist_lenet
from jaxnin.models import MODELS, NiN
from jaxnin.options import Range, option
from jaxnin.recipes import RECIPES, recipe, recipe_for
from jaxnin.train.config import TrainConfig

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "experiments" / "library" / "research.py"


def test_the_research_script_runs_silently_and_is_the_readme_s(shared_data, data_cache,
                                                                tmp_path):
    """(a)-(d) of the research script, with nothing written to the terminal by anything."""
    code = SCRIPT.read_text()
    body = code[code.index("import flax"):]
    assert body.strip() in (ROOT / "README.md").read_text()
    done = subprocess.run([sys.executable, str(SCRIPT), str(shared_data), str(tmp_path / "run")],
                          capture_output=True, cwd=tmp_path, timeout=600,
                          env={**os.environ, "JAXNIN_CACHE_DIR": str(data_cache)})
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    assert done.stdout == b"" and done.stderr == b"", (done.stdout, done.stderr)


def test_the_script_uses_only_exported_names():
    code = SCRIPT.read_text()
    used = set(re.findall(r"\bjaxnin\.([A-Za-z_]\w*)", code)) - {"__all__"}
    assert used and used <= set(jaxnin.__all__), used - set(jaxnin.__all__)
    assert not re.search(r"^\s*(from jaxnin[. ]|import jaxnin\.)", code, re.M)


@pytest.mark.parametrize("model", list(MODELS))
def test_a_config_built_for_a_model_equals_its_recipe_field_by_field(model):
    built = TrainConfig(model=model)
    assert built.to_json() == recipe_for(model).to_json()
    home = {"nin": "fashion_nin", "lenet": "mnist_lenet"}.get(model, "fashion_vgg")
    assert built.replace(model=recipe(home).model) == recipe(home)


def test_the_seeds_recipes_are_what_their_commands_train():
    assert TrainConfig(model="nin", dataset="video") == recipe("video_nin")
    assert recipe("mnist_lenet.steplr") == recipe("mnist_lenet").replace(schedule="step")
    for module, name in ((fashion_nin, "fashion_nin"), (mnist_lenet, "mnist_lenet")):
        parser = module.RECIPE.parser()
        assert module.RECIPE.config(parser.parse_args([])) == recipe(name)
    tuned = mnist_lenet.RECIPE.config(mnist_lenet.RECIPE.parser().parse_args(["--tuned"]))
    assert tuned == recipe("mnist_lenet.tuned")
    assert {f"nin_ablation.{k}" for k in ("a1", "a2", "b", "c", "d", "e")} <= set(RECIPES)


def test_a_foreign_field_is_refused_in_one_line_naming_it():
    with pytest.raises(JaxninError, match=r"^model 'nin' has no option `activation`"):
        TrainConfig(model="nin", model_options={"activation": "relu"})
    with pytest.raises(JaxninError, match=r"^dataset 'mnist' takes no `data_options`"):
        TrainConfig(model="lenet", data_options={"frames": 8})
    with pytest.raises(JaxninError, match=r"^`model` is required"):
        TrainConfig()
    with pytest.raises(JaxninError, match=r"^unknown recipe 'nope'"):
        recipe("nope")


def _digits(name="mnist", shape=(28, 28, 1), classes=10, labels_up_to=None, count=64):
    rng = np.random.default_rng(0)
    top = labels_up_to or classes
    images = lambda: rng.integers(0, 256, (count, *shape), dtype=np.uint8)
    labels = lambda: rng.integers(0, top, count).astype(np.int32)
    return ImageDataset(name, images(), labels(), images(), labels(),
                        tuple(str(i) for i in range(classes)))


@pytest.mark.parametrize("data, says", [
    (_digits("fashion_mnist"), "the data is 'fashion_mnist' but the config names `dataset` 'mnist'"),
    (_digits(shape=(32, 32, 1)), "images are (32, 32, 1) (H, W, C) but 'mnist'"),
    (_digits(classes=5), "has 5 class names but 'mnist' has 10 classes"),
    (_digits(labels_up_to=12, classes=10), "labels run from 0 to 11, but there are 10 class"),
])
def test_each_kind_of_data_mismatch_is_refused_before_anything_runs(data, says, tmp_path):
    config = recipe("mnist_lenet").replace(epochs=1, limit_train=32, limit_test=32)
    with pytest.raises(JaxninError) as refused:
        jaxnin.fit(config, data, tmp_path / "run")
    message = str(refused.value)
    assert says in message and "\n" not in message, message
    assert not (tmp_path / "run").exists()


def test_your_own_arrays_train_under_their_own_name(tmp_path):
    data = _digits()
    own = ImageDataset.from_arrays("my_digits", (data.train_images[..., 0], data.train_labels),
                                   (data.test_images[..., 0], data.test_labels))
    assert own.train_images.shape == (64, 28, 28, 1) and len(own.class_names) == 10
    records, closed = [], []

    class Writer:
        def epoch(self, record, state):
            records.append((record["epoch"], int(state.step)))

        def close(self):
            closed.append(True)

    config = recipe("mnist_lenet").replace(dataset="my_digits", epochs=2, batch_size=16)
    run = jaxnin.fit(config, own, tmp_path / "run", callbacks=[Writer()])
    assert records == [(1, 4), (2, 8)] and closed == [True]
    assert int(run.state.step) == 8 and run.config == config
    best = min(run.history, key=lambda r: r["test_loss"])["epoch"]
    assert int(run.best_state.step) == 4 * best and run.checkpoint_epochs["best_loss"] == best
    scores = jaxnin.evaluate(run, "test", checkpoint="latest")
    assert (scores["loss"], scores["acc"], scores["count"]) == (
        run.history[-1]["test_loss"], run.history[-1]["test_acc"], 64)
    assert jaxnin.predict(run, own.test_images).shape == (64,)


def test_the_split_level_evaluate_keeps_its_old_name_with_a_warning():
    import jax
    import optax

    from jaxnin.data.pipeline import to_device

    data = _digits()
    state = jaxnin.create_train_state(jaxnin.create_model("lenet"), optax.sgd(0.1),
                                      jax.random.key(0), (28, 28, 1))
    split = to_device(data.test_images, data.test_labels)
    with pytest.warns(DeprecationWarning, match="evaluate_split"):
        old = jaxnin.evaluate(state, split, 32)
    new = jaxnin.evaluate_split(state, split, 32)
    assert float(old["loss_sum"]) == float(new["loss_sum"]) and float(old["count"]) == 64


def test_library_errors_name_fields_and_commands_say_flags(capsys):
    with pytest.raises(JaxninError, match=r"^`lr` must be above 0, got -1"):
        recipe("mnist_lenet").replace(lr=-1)
    code = mnist_lenet.RECIPE.main(["--lr", "-1"])
    err = capsys.readouterr().err
    assert code == 2 and err == "error: --lr must be above 0, got -1.0\n", err


def test_a_run_json_starts_a_command(tmp_path):
    config = recipe("mnist_lenet.tuned").replace(epochs=3, limit_train=4096)
    (tmp_path / "run.json").write_text(json.dumps({"config": config.to_json()}))
    parser = mnist_lenet.RECIPE.parser()
    assert mnist_lenet.RECIPE.config(parser.parse_args(["--from", str(tmp_path)])) == config
    again = mnist_lenet.RECIPE.config(parser.parse_args(["--from", str(tmp_path / "run.json"),
                                                         "--epochs", "5"]))
    assert again == config.replace(epochs=5)


@dataclasses.dataclass(frozen=True)
class WithTestOption(TrainConfig):
    """TrainConfig with one test-only option, declared in this one line below."""
    label_smoothing: float = option(0.0, "test-only: smooth the labels by this much",
                                    within=Range(0, 1, high_open=True))


def test_a_training_option_declared_once_reaches_help_validation_and_run_json(tmp_path):
    defaults = WithTestOption(**dataclasses.asdict(mnist_lenet.DEFAULTS))
    command = dataclasses.replace(mnist_lenet.RECIPE, defaults=defaults)
    text = re.sub(r"\s+", " ", command.parser().format_help())
    assert "--label-smoothing LABEL_SMOOTHING test-only: smooth the labels by this much " \
           "(default: 0.0)" in text
    assert "label_smoothing: test-only: smooth the labels by this much. Must be in [0, 1)." \
        in WithTestOption.__doc__
    with pytest.raises(JaxninError, match=r"^`label_smoothing` must be in \[0, 1\), got 1.5"):
        command.config(command.parser().parse_args(["--label-smoothing", "1.5"]))
    config = command.config(command.parser().parse_args(["--label-smoothing", "0.1",
                                                         "--epochs", "1"]))
    run = jaxnin.fit(config.replace(dataset="digits", batch_size=16),
                     _digits("digits"), tmp_path / "run")
    assert json.loads((run.workdir / "run.json").read_text())["config"]["label_smoothing"] == 0.1


class WiderNiN(NiN):
    """NiN with one test-only option, declared on the module in this one line below."""
    extra_width: int = option(0, "test-only: extra channels", within=Range(0, 3))


def test_a_model_option_on_the_module_reaches_help_summary_validation_and_config(
        monkeypatch, capsys):
    from jaxnin import models, summary

    monkeypatch.setitem(models.MODELS, "nin", WiderNiN)
    help_text = re.sub(r"\s+", " ", fashion_nin.RECIPE.parser().format_help())
    assert "--extra-width EXTRA_WIDTH test-only: extra channels (default: 0)" in help_text
    config = fashion_nin.RECIPE.config(fashion_nin.RECIPE.parser().parse_args(
        ["--extra-width", "2"]))
    assert config.model_options == {"extra_width": 2}
    assert config.to_json()["model_options"] == {"extra_width": 2}
    with pytest.raises(JaxninError, match=r"model 'nin': `extra_width` must be in \[0, 3\]"):
        config.replace(model_options={"extra_width": 7})
    assert summary.main(["nin", "--extra-width", "1", "--input-shape", "67,67,1"]) == 0
    assert "total params" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        summary.main(["nin", "--help"])
    assert "--extra-width" in capsys.readouterr().out


def test_python_m_jaxnin_refuses_an_argument_rather_than_ignoring_it():
    from jaxnin import __main__ as listing_command

    with pytest.raises(JaxninError, match="unrecognized arguments: --seed 3"):
        listing_command.main(["--seed", "3"])


def test_python_m_jaxnin_lists_every_recipe_and_its_command():
    done = subprocess.run([sys.executable, "-m", "jaxnin"], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    for name, entry in RECIPES.items():
        assert f"  {name}\n" in done.stdout and f"$ {entry.command}\n" in done.stdout
