"""The ablation's report: one markdown table over variants, and curves grouped by question."""
from pathlib import Path

import numpy as np

from jaxnin.report.plots import figure

BASELINE = "a2"  # seed 001's recipe: drawn in every panel, so each change is seen against it
METRICS = {"test_acc": "test accuracy", "train_loss": "train loss"}


def results_table(rows: list[dict], meta: dict) -> str:
    """Markdown: ours (mean ± std over seeds) beside the forum's figure, per variant."""
    lines = [f"Device: {meta['device']}, jax {meta['jax_version']}, {meta['date']}.  ",
             f"Command: `{meta['command']}`" + (f"  \n**--quick: every variant trained as "
                                                 f"{meta['quick']}; its accuracies say nothing "
                                                 "about the questions.**"
                                                 if meta["quick"] else ""),
             "",
             "| variant | setting | seeds | final test acc | best test acc | diverged seeds | "
             "ex/s per replica | params | fwd GFLOPs | step memory | forum's figure |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        memory = "n/a" if row["step_memory_bytes"] is None else \
            f"{row['step_memory_bytes'] / 1e9:.3f} GB"
        lines.append(
            f"| {row['key']} | {row['label']} | {len(row['seeds'])} | "
            f"{row['final_test_acc_mean']:.4f} ± {row['final_test_acc_std']:.4f} | "
            f"{row['best_test_acc_mean']:.4f} ± {row['best_test_acc_std']:.4f} | "
            f"{', '.join(map(str, row['diverged_seeds_last_epoch'])) or '–'} | "
            f"{row['examples_per_s_per_replica']:,.0f} | {row['params']:,} | "
            f"{row['forward_flops'] / 1e9:.3f} | {memory} | {row['forum']} |")
    lines += ["", "Accuracy: mean ± std over seeds (population std); best = each seed's best "
              "epoch. Step memory: XLA's buffers for one training step of one replica at the "
              "variant's batch size (compiled `memory_analysis()`, arguments + outputs + "
              "temporaries) on the device above. ex/s: training examples per second of one "
              "replica, all seeds running together in one vmapped program, compile excluded."]
    return "\n".join(lines) + "\n"


def plot_variants(rows: list[dict], out: Path) -> list[Path]:
    """<metric>.png per metric: a panel per question, each curve the mean with a ± std band."""
    questions = sorted({row["question"] for row in rows})
    baseline = next((row for row in rows if row["key"] == BASELINE), None)
    paths = []
    for metric, title in METRICS.items():
        columns = min(3, len(questions))
        rows_count = -(-len(questions) // columns)
        fig = figure(figsize=(4.2 * columns, 3.3 * rows_count), dpi=110)
        axes = fig.subplots(rows_count, columns, squeeze=False, sharey=True)
        for ax in axes.ravel()[len(questions):]:
            ax.axis("off")
        for ax, question in zip(axes.ravel(), questions):
            panel = [row for row in rows if row["question"] == question]
            if baseline is not None and baseline not in panel:
                panel.insert(0, baseline)
            for row in panel:
                _band(ax, row, metric)
            ax.set_title(f"question {question}")
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        for ax in axes[:, 0]:
            ax.set_ylabel(title)
        fig.tight_layout()
        paths.append(out / f"{metric}.png")
        fig.savefig(paths[-1])
    return paths


def _band(ax, row: dict, metric: str) -> None:
    epochs = [r["epoch"] for r in row["history"]]
    per_seed = np.array([r.get("per_seed", {}).get(metric, [r[metric]]) for r in row["history"]],
                        dtype=float)  # null (a diverged seed) -> NaN
    mean, std = np.nanmean(per_seed, axis=1), np.nanstd(per_seed, axis=1)
    (line,) = ax.plot(epochs, mean, label=row["key"], linewidth=1.5)
    ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2, linewidth=0)
