"""The lever x seed table: each seed's best accuracy and dead classes, and the spread."""
import json

import pytest

from jaxnin.errors import JaxninError
from jaxnin.report import seed_table


def finished_run(folder, seeds, best, dead):
    folder.mkdir()
    (folder / "run.json").write_text(json.dumps(
        {"results": {"seeds": seeds, "best_test_acc_per_seed": best}}))
    (folder / "history.json").write_text(json.dumps(
        [{"epoch": 1, "per_seed": {"dead_classes": [9] * len(seeds)}},  # only the last counts
         {"epoch": 2, "per_seed": {"dead_classes": dead}}]))
    return folder


def test_a_row_per_lever_with_dead_classes_mean_std_min_and_reach(tmp_path, capsys):
    a = finished_run(tmp_path / "a", [0, 1, 2], [1.0, 0.875, 0.5], [0, 1, 4])
    b = finished_run(tmp_path / "b", [0, 1, 2], [0.95, 0.9, 0.85], [0, 0, 0])
    assert seed_table.main(["seed's=" + str(a), f"bias={b}", "--reach", "0.9"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "| lever | seed 0 | seed 1 | seed 2 | mean ± std | min | ≥ 0.90 |"
    assert lines[2] == ("| seed's | 1.000 | 0.875 (1 dead) | 0.500 (4 dead) | 0.792 ± 0.212 "
                        "| 0.500 | 1/3 |")
    assert lines[3] == "| bias | 0.950 | 0.900 | 0.850 | 0.900 ± 0.041 | 0.850 | 2/3 |"


def test_runs_of_other_seeds_or_unfinished_ones_are_refused(tmp_path):
    a = seed_table.read_run(finished_run(tmp_path / "a", [0, 1], [1.0, 0.9], [0, 0]))
    b = seed_table.read_run(finished_run(tmp_path / "b", [1, 2], [1.0, 0.9], [0, 0]))
    with pytest.raises(JaxninError, match="different seeds"):
        seed_table.table({"a": a, "b": b}, 0.9)
    (tmp_path / "empty").mkdir()
    with pytest.raises(JaxninError, match="holds no finished run"):
        seed_table.read_run(tmp_path / "empty")


def test_two_runs_of_one_name_are_refused_naming_both_folders(tmp_path, capsys):
    a = finished_run(tmp_path / "a", [0, 1], [1.0, 0.9], [0, 0])
    b = finished_run(tmp_path / "b", [0, 1], [0.8, 0.7], [0, 0])
    assert list(seed_table.named_runs([f"x={a}", str(b)])) == ["x", str(b)]
    from jaxnin.cli import run_main

    for specs in ([f"x={a}", f"x={b}"], [str(a), f"{a}={b}"]):
        assert run_main(seed_table.main, specs) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{a} and {b}" in err and "NAME=RUN_DIR" in err, err


@pytest.mark.parametrize("damage, said", [
    ("unfinished", "has no results yet, which are written when its last epoch ends: finish it "
                   "by running its command again with --resume"),
    ("no run.json", "run.json cannot be read (No such file or directory)"),
    ("not JSON", "run.json is damaged"),
    ("no epoch", "history.json records no epoch"),
])
def test_an_unfinished_or_damaged_run_is_one_line_saying_what_is_missing(damage, said, tmp_path,
                                                                         capsys):
    folder = finished_run(tmp_path / "run", [0, 1], [1.0, 0.9], [0, 0])
    record = folder / "run.json"
    if damage == "unfinished":  # as fit leaves it before the last epoch ends
        record.write_text(json.dumps({"config": {"model": "nin"}}))
    elif damage == "no run.json":
        record.unlink()
    elif damage == "not JSON":
        record.write_bytes(b"\xff{")
    else:
        (folder / "history.json").write_text("[]")
    from jaxnin.cli import run_main

    assert run_main(seed_table.main, [f"x={folder}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{folder} holds no finished run: " in err, err
    assert said in err and "'results'" not in err, err
