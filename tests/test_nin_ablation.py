"""nin_ablation: variants as the forum posed them, and --quick writing table, plots and JSON."""
import json
from pathlib import Path

import pytest

from jaxnin.errors import JaxninError
from jaxnin.experiments import nin_ablation


def test_variants_are_the_forum_settings():
    variants = {v.key: v.config for v in nin_ablation.VARIANTS}
    base = variants["a2"]
    assert (base.model, base.optimizer, base.lr, base.batch_size, base.resize, base.epochs) == (
        "nin", "sgd", 0.1, 128, 224, 10)
    assert variants["a1"].model_options == {"num_1x1": 1}
    assert (variants["b"].lr, variants["b"].epochs) == (0.12, 15)
    assert (variants["c"].optimizer, variants["c"].lr, variants["c"].batch_size,
            variants["c"].resize) == ("adam", 1e-3, 512, 96)
    assert (variants["d"].lr, variants["d"].batch_size) == (2e-3, 1024)
    assert variants["e"].model_options == {"head": "graded"}
    assert sorted(v.lr for k, v in variants.items() if k.startswith("f")) == [0.02, 0.05, 0.2, 0.3]


def test_unknown_variant_is_one_line():
    with pytest.raises(JaxninError, match="unknown --variants zz: choose from a2,a1"):
        nin_ablation._chosen("a2,zz")


def test_quick_writes_table_plots_and_json(fashion, data_cache, tmp_path, monkeypatch, capsys):
    # Two variants keep this under a minute or two; the committed quick table has them all.
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(data_cache))
    argv = ["--quick", "--variants", "a2,e", "--workdir", str(tmp_path / "runs"),
            "--out", str(tmp_path / "out")]
    assert nin_ablation.main(argv) == 0
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert "resize 67" in results["quick"] and [v["key"] for v in results["variants"]] == ["a2", "e"]
    for row in results["variants"]:
        assert len(row["final_test_acc_per_seed"]) == 2 and len(row["history"]) == 2
        assert row["config"]["resize"] == 67 and row["examples_per_s_per_replica"] > 0
        assert row["step_memory_bytes"] > row["step_temp_bytes"] > 0
    graded, direct = results["variants"][1], results["variants"][0]
    assert graded["params"] - direct["params"] == 2_355_734 - 1_992_166  # exact, from summary
    table = (tmp_path / "out" / "table.md").read_text()
    assert table.count("\n| a2 |") == 1 and "| e |" in table and "test 0.884" in table
    for name in ("test_acc.png", "train_loss.png"):
        assert (tmp_path / "out" / name).read_bytes()[:4] == b"\x89PNG"
    # a second call reads the finished runs back instead of training again
    capsys.readouterr()
    assert nin_ablation.main(argv) == 0
    assert "epoch   1" not in capsys.readouterr().out
    with pytest.raises(JaxninError, match="holds this variant with other settings"):
        nin_ablation.main([*argv, "--seeds", "3"])


def test_quick_writes_under_runs_not_over_the_kept_tables(shared_data, data_cache, tmp_path,
                                                         monkeypatch, capsys):
    """Without --out, --quick writes beside its runs (runs/nin_ablation_quick/results) and
    says so first; experiments/nin_ablation/quick, which the repository keeps, is untouched."""
    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(data_cache))
    monkeypatch.chdir(tmp_path)
    assert nin_ablation.main(["--quick", "--variants", "a2", "--seeds", "1",
                              "--data-dir", str(shared_data)]) == 0
    out = Path("runs/nin_ablation_quick/results")
    first = capsys.readouterr().out.splitlines()[0]
    assert first == f"nin_ablation: table, plots and JSON -> {out}"
    assert (tmp_path / out / "table.md").exists() and (tmp_path / out / "results.json").exists()
    assert not (tmp_path / "experiments").exists()


def test_an_interrupted_ablation_says_what_each_variant_kept_and_how_to_go_on(
        shared_data, data_cache, tmp_path, monkeypatch, capsys):
    """Ctrl-C in the second variant's second epoch. The ablation has no --resume: a rerun of
    the same command goes on, so that is what the line advises."""
    from jaxnin.cli import run_main
    from jaxnin.train import loop

    monkeypatch.setenv("JAXNIN_CACHE_DIR", str(data_cache))
    real, calls = loop.run_epoch, []

    def run_epoch(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:  # a2's two epochs, e's first, then Ctrl-C
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(loop, "run_epoch", run_epoch)
    runs = tmp_path / "runs"
    code = run_main(nin_ablation.main, ["--quick", "--variants", "a2,e", "--seeds", "1",
                                        "--data-dir", str(shared_data), "--workdir", str(runs),
                                        "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and err == (
        f"error: interrupted (Ctrl-C or SIGTERM); saved in {runs}: a2 up to epoch 2, e up to "
        "epoch 1; rerun the same command to continue (each variant goes on where it stopped)\n")
