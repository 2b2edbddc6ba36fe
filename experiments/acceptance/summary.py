"""`<out>/acceptance/<kind>-<date>.md`: one table of every run and target for a device kind.

It covers every slot so far: each planned run's latest record of this device kind (any date),
and, for the runs without one, why this call did not run them.
"""
import json
from pathlib import Path

from experiments.acceptance.plan import Run
from jaxnin.files import write_text


def latest_records(out: Path, kind: str) -> dict[str, dict]:
    """key -> the newest record of that run for device kind `kind` (an ok one first)."""
    found: dict[str, dict] = {}
    for path in sorted((out / "acceptance").glob(f"{kind}-????-??-??/*.json")):
        record = json.loads(path.read_text())
        old = found.get(record["key"])
        if old is None or (record["status"] == "ok") >= (old["status"] == "ok"):
            found[record["key"]] = record
    return found


def write_summary(path: Path, runs: list[Run], records: dict[str, dict],
                  not_run: dict[str, str], header: list[str]) -> Path:
    lines = [*header, "",
             "| part | run | target | measured | met | wall from cold start | ex/s | date | "
             "record |", "|---|---|---|---|---|---|---|---|---|"]
    for run in runs:
        record = records.get(run.key)
        if record is None:
            lines.append(f"| {run.part} | {run.label} | {_target(run)} | not run: "
                         f"{not_run.get(run.key, 'not reached')} | – | – | – | – | – |")
            continue
        lines += _rows(run, record)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, "\n".join(lines) + "\n")  # rewritten after every run: never half
    return path


def _target(run: Run) -> str:
    if run.target:
        return run.target.text()
    return "exits 0" if run.part == "smoke" else "recorded (no target)"


def _rows(run: Run, record: dict) -> list[str]:
    m = record["measured"]
    status = record["status"] if record["status"] == "ok" else f"{record['status']}: {record['reason']}"
    wall = f"{record['wall_s']:.1f} s"
    where = f"`{record['records']}`"
    if run.kind == "bench":
        return _bench_rows(run, record, status, wall, where)
    if run.kind == "ablation":
        value = (f"final {m['final_test_acc_mean']:.4f} ± {m['final_test_acc_std']:.4f}, best "
                 f"{m['best_test_acc_mean']:.4f} (forum: {m['forum']})"
                 if "final_test_acc_mean" in m else status)
        speed = _num(m.get("examples_per_s_all_replicas"))
    else:
        per_seed = m.get("final_test_acc_per_seed") or []
        value = (f"final test acc {m['final_test_acc']:.4f} (best {m['best_test_acc']:.4f}, "
                 f"{m['epochs']} epochs)" + (f", per seed {per_seed}" if len(per_seed) > 1 else "")
                 if "final_test_acc" in m else "–")
        if record["status"] != "ok":
            value = f"{status}; {value}"
        elif m.get("export"):
            value += f"; {m['export']}"
        speed = _num(m.get("examples_per_s"))
    return [f"| {run.part} | {run.label} | {_target(run)} | {value} | {_met(record['met'])} | "
            f"{wall} | {speed} | {record['date']} | {where} |"]


def _bench_rows(run: Run, record: dict, status: str, wall: str, where: str) -> list[str]:
    m = record["measured"]
    if not m:
        return [f"| speed | {run.label} | – | {status} | – | {wall} | – | {record['date']} | "
                f"{where} |"]
    model_of = {"nin": "NiN", "vgg11": "VGG-11", "lenet": "LeNet"}
    mine = [t for t in m["targets"] if t["measured"] is not None or not (
        t["note"] or "").startswith("not measured")]
    rows = [f"| speed | {run.label}: {t['name']} | {t['required']} | "
            f"{_num(t['measured'], 2) if t['measured'] is not None else t['note']} | "
            f"{_met(t['met'])} | {wall} | – | {record['date']} | {where} |" for t in mine]
    for row in m["throughput"]:
        what = row["dtype"] if row["side"] == "jaxnin" else f"torch {row['variant']}"
        value = f"{_num(row['examples_per_s'])} ex/s" if row["status"] == "ok" else row["status"]
        rows.append(f"| speed | {model_of.get(row['model'], row['model'])} b{row['batch_size']} "
                    f"{what} | – | {value} | – | {wall} | {_num(row['examples_per_s'])} | "
                    f"{record['date']} | {where} |")
    for tta in m["tta"]:
        value = (f"{tta['status']}, {tta['wall_s']:.1f} s" if tta.get("wall_s") is not None
                 else tta["status"]) + (f" ({tta['reason']})" if tta.get("reason") else "")
        rows.append(f"| speed | time to accuracy, {tta['recipe']} {tta['side']} | – | {value} | – "
                    f"| {wall} | – | {record['date']} | {where} |")
    if record["status"] != "ok":
        rows.append(f"| speed | {run.label} | – | {status} | – | {wall} | – | {record['date']} "
                    f"| {where} |")
    return rows


def _met(value: bool | None) -> str:
    return "–" if value is None else ("met" if value else "**missed**")


def _num(value, digits: int = 0) -> str:
    return "–" if value is None else f"{value:,.{digits}f}"
