"""Training curves as PNGs, each line labelled with its final value (seed 000's plots)."""
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers or CI
import matplotlib.pyplot as plt  # noqa: E402

CURVES = {"loss": ("train_loss", "test_loss"), "acc": ("train_acc", "test_acc")}


def plot_curves(history: list[dict], workdir: str | Path, title: str = "") -> list[Path]:
    """Write loss.png and acc.png (train and test per epoch) into `workdir`; return the paths."""
    return [_plot(history, keys, Path(workdir) / f"{name}.png", name, title)
            for name, keys in CURVES.items()]


def _plot(history, keys, path, ylabel, title) -> Path:
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    epochs = [record["epoch"] for record in history]
    for key in keys:
        values = [record[key] for record in history]
        (line,) = ax.plot(epochs, values, marker="o", markersize=3, label=key.replace("_", " "))
        ax.annotate(f"{values[-1]:.4f}", (epochs[-1], values[-1]), xytext=(4, 0),
                    textcoords="offset points", va="center", color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.margins(x=0.12)  # room for the final-value labels
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
