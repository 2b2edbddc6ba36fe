"""A run owns its workdir, leaves nothing that blocks a rerun, and keeps its history (issue 14)."""
import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from jaxnin.errors import JaxninError
from jaxnin.report.logging import write_json
from jaxnin.run import fit, workdir_lock
from jaxnin.train import loop
from jaxnin.train.checkpoint import CheckpointStore
from jaxnin.train.config import TrainConfig
from synthetic import random_dataset

TINY = TrainConfig(model="lenet", dataset="fashion_mnist", epochs=2, batch_size=32, optimizer="momentum", lr=0.05,
                   resize=None, limit_train=256, limit_test=100, eval_batch_size=50)


@pytest.fixture(scope="module")
def data():
    return random_dataset(256, 100)


def test_a_second_run_on_a_locked_workdir_is_refused_in_one_line(data, tmp_path):
    with workdir_lock(tmp_path):
        with pytest.raises(JaxninError, match=f"{tmp_path} is in use by another jaxnin run "
                                              f"\\(pid {os.getpid()} .*choose another `workdir`"):
            fit(TINY, data, tmp_path)
    assert not (tmp_path / "run.json").exists()  # the refused run wrote nothing
    fit(TINY, data, tmp_path)  # the lock went with its holder


def test_the_lock_holds_across_processes(data, tmp_path):
    code = (f"import sys, time; from jaxnin.run import workdir_lock\n"
            f"with workdir_lock(__import__('pathlib').Path({str(tmp_path)!r})):\n"
            "    print('held', flush=True); sys.stdin.read()")
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(JaxninError, match=f"in use by another jaxnin run \\(pid {holder.pid}"):
            fit(TINY, data, tmp_path)
    finally:
        holder.communicate("", timeout=60)


def test_a_workdir_with_no_finished_epoch_can_be_reused(data, tmp_path, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(loop, "run_epoch", interrupted)
        with pytest.raises(JaxninError, match="nothing was saved \\(the run's files are "
                                              "removed\\): rerun the same command"):
            fit(TINY, data, tmp_path)
    assert not (tmp_path / "run.json").exists()  # the interrupted run's files went with it
    # What a kill -9 in the first epoch leaves: a run record and an empty checkpoints folder.
    (tmp_path / "run.json").write_text(json.dumps({"config": TINY.to_json()}))
    (tmp_path / "checkpoints").mkdir()
    assert [r["epoch"] for r in fit(TINY, data, tmp_path).history] == [1, 2]  # the same command again


def test_resume_keeps_every_segment_and_refuses_fewer_epochs(data, tmp_path):
    fit(TINY, data, tmp_path)
    first = json.loads((tmp_path / "run.json").read_text())
    fit(dataclasses.replace(TINY, epochs=3), data, tmp_path, resume=True)
    record = json.loads((tmp_path / "run.json").read_text())
    assert [s["first_epoch"] for s in record["segments"]] == [1, 3]
    assert [s["epochs"] for s in record["segments"]] == [2, 3]
    assert record["segments"][0] == first["segments"][0]
    assert (record["command"], record["started"]) == (first["command"], first["started"])
    with pytest.raises(JaxninError, match="has already trained 3 epochs; set `epochs` to 3"):
        fit(TINY, data, tmp_path, resume=True)
    assert json.loads((tmp_path / "run.json").read_text()) == record  # untouched


def test_resume_keeps_a_cosine_schedule_s_horizon(data, tmp_path):
    cosine = dataclasses.replace(TINY, schedule="cosine")
    fit(cosine, data, tmp_path)
    with pytest.raises(JaxninError, match="`epochs` 3 on resume: the run's cosine schedule "
                                          "decays over its 2 epochs"):
        fit(dataclasses.replace(cosine, epochs=3), data, tmp_path, resume=True)


def test_a_record_with_a_diverged_seed_is_never_best(tmp_path):
    store = CheckpointStore(tmp_path, ("best_loss",))
    state = {"w": np.zeros(2, np.float32)}
    store.save(1, state, {"test_loss": 1.0, "test_acc": 0.5, "diverged_seeds": []})
    written = store.save(2, state, {"test_loss": 0.1, "test_acc": 0.9, "diverged_seeds": [1]})
    assert written == ["latest"] and store.latest_epoch("best_loss") == 1
    store.close()


def test_history_files_are_strict_json(tmp_path):
    write_json(tmp_path / "h.json", [{"per_seed": {"train_loss": [0.5, float("nan")]},
                                      "x": float("inf")}])

    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    loaded = json.loads((tmp_path / "h.json").read_text(), parse_constant=refuse)
    assert loaded == [{"per_seed": {"train_loss": [0.5, None]}, "x": None}]


def test_resume_takes_model_options_typed_at_their_defaults_and_a_no_op_keeps_results(
        data, tmp_path):
    """A run started without model options resumes with them typed at their declared
    defaults (not a change); a real change is still refused. A resume with no epoch left to
    run keeps the recorded results, wall time included."""
    from jaxnin.models import model_class
    from jaxnin.options import option_defaults
    fit(dataclasses.replace(TINY, epochs=1), data, tmp_path)
    defaults = option_defaults(model_class("lenet"))
    assert defaults  # LeNet-5 declares options
    typed = dataclasses.replace(TINY, model_options=defaults)
    assert [r["epoch"] for r in fit(typed, data, tmp_path, resume=True).history] == [1, 2]
    name, value = next((k, v) for k, v in defaults.items() if isinstance(v, str))
    other = next(c for c in ("relu", "sigmoid") if c != value)
    with pytest.raises(JaxninError, match="model_options was"):
        fit(dataclasses.replace(TINY, model_options={name: other}), data, tmp_path, resume=True)
    results = json.loads((tmp_path / "run.json").read_text())["results"]
    fit(TINY, data, tmp_path, resume=True)  # both epochs are done: nothing runs
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["results"] == results
    assert len(record["segments"]) == 3
