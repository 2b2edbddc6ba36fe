"""The bench's results as files: ratios against the targets, JSON and a markdown table."""
import json
import re
from pathlib import Path

from jaxnin import files

# The targets, on an H100. Ratios are jaxnin's best dtype over tuned PyTorch.
TARGETS = (
    {"name": "NiN@224 b128: jaxnin / tuned PyTorch", "kind": "ratio", "model": "nin",
     "batch_size": 128, "resize": 224, "at_least": 2.0},
    {"name": "NiN@224 b512: jaxnin / tuned PyTorch", "kind": "ratio", "model": "nin",
     "batch_size": 512, "resize": 224, "at_least": 2.0},
    {"name": "VGG-11@224 b128: jaxnin / tuned PyTorch", "kind": "ratio", "model": "vgg11",
     "batch_size": 128, "resize": 224, "at_least": 1.3},
    {"name": "LeNet seed recipe (b16, 50 epochs): wall from cold start, s", "kind": "tta_wall",
     "recipe": "lenet", "at_most": 15.0},
    {"name": "Fashion-MNIST NiN to >= 0.885 test acc from cold start, s", "kind": "tta_target",
     "recipe": "nin", "at_most": 20.0},
)
COLUMNS = (("jaxnin", "float32-strict"), ("jaxnin", "float32-tf32"), ("jaxnin", "bfloat16"),
           ("torch", "seed_pipeline"), ("torch", "fp32-strict"), ("torch", "fp32-tf32"),
           ("torch", "tuned"), ("torch", "cpu"))
COLUMN_TITLES = ("jaxnin fp32 strict", "jaxnin fp32 tf32", "jaxnin bf16",
                 "torch seed pipeline (torch defaults)", "torch fp32 strict", "torch fp32 tf32",
                 "torch tuned (bf16)", "torch cpu loop (strict)")
# Like for like: (name, jaxnin's row, PyTorch's row), each pair under one precision policy.
SAME_POLICY = (("fp32_strict", "float32-strict", "fp32-strict"),
               ("fp32_tf32", "float32-tf32", "fp32-tf32"),
               ("bf16", "bfloat16", "tuned"),
               ("cpu_loop", "float32-strict", "cpu"))


def variant(row: dict) -> str:
    """A row's column: its dtype or variant, and for fp32 its precision policy."""
    name = row.get("dtype") if row["side"] == "jaxnin" else row.get("variant")
    precision = row.get("precision")
    return f"{name}-{precision}" if precision and name in ("float32", "fp32") else name


def ratios(rows: list[dict]) -> list[dict]:
    """Per (model, batch, resize): jaxnin's best ex/s over tuned PyTorch's, and over PyTorch's best."""
    out = []
    for key in dict.fromkeys((r["model"], r["batch_size"], r["resize"]) for r in rows):
        same = [r for r in rows if (r["model"], r["batch_size"], r["resize"]) == key
                and r["status"] == "ok"]
        ours = max((r for r in same if r["side"] == "jaxnin"), key=_speed, default=None)
        theirs = [r for r in same if r["side"] == "torch"]
        tuned = next((r for r in theirs if r["variant"] == "tuned"), None)
        best = max(theirs, key=_speed, default=None)
        pick = lambda side, name: next((r for r in same if r["side"] == side
                                        and variant(r) == name), None)
        out.append({"model": key[0], "batch_size": key[1], "resize": key[2],
                    "jaxnin_best": variant(ours) if ours else None,
                    "vs_tuned": _ratio(ours, tuned), "vs_best_torch": _ratio(ours, best),
                    "best_torch": variant(best) if best else None,
                    "same_policy": {name: _ratio(pick("jaxnin", a), pick("torch", b))
                                    for name, a, b in SAME_POLICY}})
    return out


def targets(results: dict) -> list[dict]:
    """Each target beside what this run measured; `met` is None where it did not apply."""
    out = []
    full = results["settings"]["tta_full_recipe"]
    for target in TARGETS:
        measured, note = None, None
        if target["kind"] == "ratio":
            match = next((r for r in results["ratios"] if r["model"] == target["model"]
                          and r["batch_size"] == target["batch_size"]
                          and r["resize"] == target["resize"]), None)
            measured = match and match["vs_tuned"]
            note = None if match else "not measured in this run"
        else:
            tta = next((t for t in results["tta"] if t["recipe"] == target["recipe"]
                        and t["side"] == "jaxnin"), None)
            if tta is None:
                note = "not measured in this run"
            elif not full:
                note = "recipe cut short in this run (--tiny, --epochs or --limit-*)"
            elif target["kind"] == "tta_wall":
                measured = tta["wall_s"] if tta["status"] == "ok" else None
                note = None if measured else f"run {tta['status']}"
            else:
                measured = tta.get("time_to_target_s")
                note = None if measured else "target accuracy not reached"
        met = None
        if measured is not None and not (note or "").startswith("recipe cut"):
            met = (measured >= target["at_least"]) if "at_least" in target else (
                measured <= target["at_most"])
        required = (f">= {target['at_least']}x" if "at_least" in target
                    else f"<= {target['at_most']:g} s")
        out.append({"name": target["name"], "required": required, "measured": measured,
                    "met": met, "note": note})
    return out


def output_paths(out_dir: Path, device_kind: str, date: str, suffix: str) -> tuple[Path, Path]:
    """results-<device>-<date><suffix>.json and .md in `out_dir`."""
    slug = re.sub(r"[^a-z0-9]+", "-", device_kind.lower()).strip("-") or "unknown-device"
    stem = f"results-{slug}-{date}{suffix}"
    return out_dir / f"{stem}.json", out_dir / f"{stem}.md"


def write(results: dict, json_path: Path, md_path: Path) -> None:
    json_path.parent.mkdir(parents=True, exist_ok=True)
    for path, text in ((json_path, json.dumps(results, indent=2) + "\n"),
                       (md_path, markdown(results))):
        files.write_text(path, text)


def markdown(results: dict) -> str:
    device = results["device"]
    lines = [f"# jaxnin bench: {device.get('kind', 'unknown device')}, {results['date']}", "",
             f"- command: `{results['command']}` (git {results.get('git_commit') or 'unknown'})",
             f"- device: {device.get('kind')} ({device.get('platform')}, "
             f"{device.get('count')} device(s)); bf16 peak "
             f"{_tflops(device.get('bf16_peak_flops'))} ({device.get('bf16_peak_source')}); "
             f"measured bf16 matmul {_tflops(device.get('matmul_bf16_flops'))}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()
                                        if v is not None)]
    pending = results.get("pending") or []
    if pending:
        lines.insert(2, f"- **partial results**: {partial_reason(results)}; {len(pending)} "
                     "measurements not made, listed under Not measured")
    lines += [f"- {note}" for note in results["notes"]]
    if results["throughput"]:
        lines += ["", "## Training examples/sec (random data of the real shapes)", "",
                  "| model | batch | input | " + " | ".join(COLUMN_TITLES)
                  + " | jaxnin / tuned | jaxnin / best torch |",
                  "|---" * (5 + len(COLUMNS)) + "|"]
        for ratio in results["ratios"]:
            cells = [_speed_cell(_row(results["throughput"], ratio, side, name))
                     for side, name in COLUMNS]
            lines.append(f"| {ratio['model']} | {ratio['batch_size']} | "
                         f"{ratio['resize'] or 28} | " + " | ".join(cells)
                         + f" | {_times(ratio['vs_tuned'])} | {_times(ratio['vs_best_torch'])}"
                         + (f" ({ratio['best_torch']})" if ratio["best_torch"] else "") + " |")
        lines += ["", "## Like for like: jaxnin / PyTorch, each pair under one precision policy",
                  "", "| model | batch | input | fp32 strict | fp32 tf32 | bf16 (jaxnin bf16 / "
                  "torch tuned) | jaxnin fp32 strict / torch cpu loop |", "|---" * 7 + "|"]
        for ratio in results["ratios"]:
            same = ratio.get("same_policy", {})
            lines.append(f"| {ratio['model']} | {ratio['batch_size']} | {ratio['resize'] or 28} | "
                         + " | ".join(_times(same.get(name)) for name, _, _ in SAME_POLICY)
                         + " |")
        lines += ["", "## MFU and peak memory", "",
                  "| model | batch | side | variant | ex/s | MFU | peak memory |",
                  "|---|---|---|---|---|---|---|"]
        sources = {}
        for row in results["throughput"]:
            if row["status"] == "ok":
                mark = sources.setdefault(row.get("peak_memory_source", ""), len(sources) + 1)
                lines.append(f"| {row['model']} | {row['batch_size']} | {row['side']} | "
                             f"{variant(row)} | {row['examples_per_s']:,.0f} | "
                             f"{_percent(row.get('mfu'))} | "
                             f"{_mib(row.get('peak_memory_bytes'))} [{mark}] |")
        lines += [""] + [f"[{mark}] {source}  " for source, mark in sources.items()]
    if results["throughput"]:
        lines += settings_table(results["throughput"], device.get("platform"))
    profiled = [r for r in results["throughput"] if r.get("profile", {}).get("top")]
    if profiled:
        lines += ["", "## Where jaxnin's epoch goes (one traced epoch, --profile)", ""]
        for row in profiled:
            profile = row["profile"]
            split = ", ".join(f"{k} {100 * v['share']:.0f} %"
                              for k, v in profile["by_category"].items())
            lines += [f"**{row['model']} b{row['batch_size']} {variant(row)}**: busy "
                      f"{profile['busy_s']:.3f} s of {profile['wall_s']:.3f} s wall "
                      f"({profile['source']}); by what the kernels compute (a fusion by the "
                      f"HLO it holds, else by its name): {split}. Top kernels:", ""]
            lines += [f"- {100 * op['share']:.1f} % `{op['name'][:100]}`"
                      + (f" (holds {op['holds'][:80]})" if op.get("holds") else "")
                      for op in profile["top"][:5]]
            lines.append("")
    lines += ["", "## Targets (on an H100)", "",
              "| target | required | measured | met |", "|---|---|---|---|"]
    for target in results["targets"]:
        measured = target["measured"]
        shown = "–" if measured is None else (
            f"{measured:.2f}x" if target["required"].startswith(">=") else f"{measured:.1f} s")
        met = {True: "yes", False: "**no**", None: "–"}[target["met"]]
        lines.append(f"| {target['name']} | {target['required']} | {shown}"
                     + (f" ({target['note']})" if target["note"] else "") + f" | {met} |")
    if results["tta"]:
        lines += ["", "## Time to accuracy (real data, from the child's spawn, caches empty)", "",
                  "| recipe | side | status | epochs | best test acc | to target | whole run "
                  "| before epoch 1 | compiling | training + eval | after the last epoch |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for tta in results["tta"]:
            accs = [r["test_acc"] for r in tta.get("history", [])]
            target = tta.get("target_acc")
            reached = tta.get("time_to_target_s")
            to_target = "–" if target is None else (
                f"{reached:.1f} s (>= {target})" if reached else f"not reached (>= {target})")
            parts = tta.get("breakdown") or {}
            lines.append(f"| {tta['recipe']} | {tta['side']} | {tta['status']} | {len(accs)} | "
                         f"{max(accs) if accs else float('nan'):.4f} | {to_target} | "
                         f"{_seconds(tta.get('wall_s'))} | "
                         + " | ".join(_seconds(parts.get(k)) for k in (
                             "before_first_epoch_s", "compile_s", "epochs_s",
                             "after_last_epoch_s")) + " |")
        lines += ["", "PyTorch's epoch 1 includes torch.compile; jaxnin's records count "
                  "compiling apart. The rest of the wall time falls between epochs "
                  "(jaxnin saves checkpoints there)."]
    problems = {}
    for row in [*results["throughput"], *results["tta"]]:
        if row["status"] != "ok":
            problems.setdefault((row["status"], row.get("reason", "")), []).append(label(row))
    if problems or pending:
        lines += ["", "## Not measured", ""]
        lines += [f"- {'; '.join(labels)}: {status}: {reason}"
                  for (status, reason), labels in problems.items()]
        if pending:
            lines.append(f"- {'; '.join(pending)}: not run: {partial_reason(results)}")
    return "\n".join(lines) + "\n"


def partial_reason(results: dict) -> str:
    """Why results with measurements still pending are partial."""
    return results.get("stopped") or ("the bench had not finished when this was written (it "
                                      "was still running, or was killed)")


def settings_table(rows: list[dict], platform: str | None) -> list[str]:
    """Every row's precision policy and the settings that decide its speed, skipped rows too."""
    lines = ["", "## Every row's precision policy and settings", "",
             "| model | batch | side | variant | status | precision policy | data | compile "
             "| cudnn.benchmark | threads | versions | speed env |", "|---" * 12 + "|"]
    for row in rows:
        got = row.get("settings", {})
        lines.append(" | ".join([
            f"| {row['model']}", str(row["batch_size"]), row["side"], variant(row),
            row["status"], policy_label(row.get("policy") or {}, platform),
            got.get("data_placement", "–"), got.get("torch_compile", "jax.jit"),
            str(got.get("cudnn_benchmark", "–")), _threads(got), _versions(got),
            ", ".join(f"{k}={v}" for k, v in got.get("env", {}).items()) or "none set"]) + " |")
    return lines


def policy_label(rule: dict, platform: str | None) -> str:
    """One cell: the policy's name, what runs in which precision, and the switches set."""
    if not rule:
        return "–"
    switches = ", ".join(f"{k}={v}" for k, v in rule.items()
                         if k in ("jax_default_matmul_precision", "matmul_allow_tf32",
                                  "cudnn_allow_tf32"))
    if rule["name"] == "bf16":
        text = f"bf16 compute; fp32: {rule['stays_fp32']}"
    else:
        text = f"{rule['name']}: matmul {rule['matmul']}, conv {rule['conv']}"
    tf32 = "tf32" in (rule.get("matmul", "") + rule.get("conv", "")
                      + rule.get("fp32_leftovers", ""))
    return f"{text} ({switches})" + ("; cpu: no tf32" if platform == "cpu" and tf32 else "")


def _threads(got: dict) -> str:
    if "num_threads" in got:
        return (f"torch {got['num_threads']} intra-op, {got['num_interop_threads']} inter-op "
                f"of {got.get('usable_cpus')} CPUs")
    return f"XLA's own, {got['usable_cpus']} CPUs usable" if "usable_cpus" in got else "–"


def _versions(got: dict) -> str:
    return ", ".join(f"{k} {v}" for k, v in got.get("versions", {}).items() if v) or "–"


def _row(rows, ratio, side, name):
    return next((r for r in rows if r["side"] == side and variant(r) == name
                 and (r["model"], r["batch_size"], r["resize"])
                 == (ratio["model"], ratio["batch_size"], ratio["resize"])), None)


def label(row: dict) -> str:
    """A row's name, or a job's before it runs: `lenet b16 jaxnin float32-strict`."""
    if "recipe" in row:
        return f"time to accuracy, {row['recipe']}, {row['side']}"
    return f"{row['model']} b{row['batch_size']} {row['side']} {variant(row)}"


def _speed(row):
    return row["examples_per_s"]


def _ratio(ours, theirs):
    return ours["examples_per_s"] / theirs["examples_per_s"] if ours and theirs else None


def _speed_cell(row):
    if row is None:
        return "–"
    return f"{row['examples_per_s']:,.0f}" if row["status"] == "ok" else row["status"]


def _times(value):
    return "–" if value is None else f"{value:.2f}x"


def _percent(value):
    return "–" if value is None else f"{100 * value:.1f} %"


def _mib(value):
    return "–" if value is None else f"{value / 2 ** 20:,.0f} MiB"


def _tflops(value):
    return "unknown" if not value else f"{value / 1e12:,.1f} TFLOP/s"


def _seconds(value):
    return "–" if value is None else f"{value:.1f} s"
