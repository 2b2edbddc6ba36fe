"""Training curves as PNGs, each line labelled with its final value (seed 000's plots).

Figures are drawn with matplotlib's object API (`Figure`, no pyplot), which renders to files
without a backend: importing or calling this never changes a notebook's or a GUI's backend.
"""
from pathlib import Path

import numpy as np

CURVES = {"loss": ("train_loss", "test_loss"), "acc": ("train_acc", "test_acc")}


def plot_curves(history: list[dict], workdir: str | Path, title: str = "") -> list[Path]:
    """Write loss.png and acc.png (train and test per epoch) into `workdir`; return the paths."""
    return [_plot(history, keys, Path(workdir) / f"{name}.png", name, title)
            for name, keys in CURVES.items()]


def figure(**kwargs):
    """A matplotlib Figure that saves to files whatever pyplot's backend is."""
    from matplotlib.figure import Figure  # matplotlib loads only when a figure is drawn

    return Figure(**kwargs)


def image_formats() -> dict[str, str]:
    """{suffix: description} of each format a figure can be saved in here, as matplotlib
    lists them (lower case, without the dot); PGF only where its TeX program is installed
    (without it matplotlib fails in the middle of the write)."""
    import shutil

    import matplotlib

    formats = dict(figure().canvas.get_supported_filetypes())
    if not shutil.which(matplotlib.rcParams["pgf.texsystem"]):
        formats.pop("pgf", None)
    return formats


def _plot(history, keys, path, ylabel, title) -> Path:
    fig = figure(figsize=(6, 4), dpi=120)
    ax = fig.subplots()
    epochs = [record["epoch"] for record in history]
    finals = sorted(keys, key=lambda k: history[-1][k])
    for key in keys:
        values = [record[key] for record in history]
        (line,) = ax.plot(epochs, values, marker="o", markersize=3, label=key.replace("_", " "))
        if "per_seed" in history[-1]:  # --seeds K: the mean, in a band of ± one std over seeds
            spread = np.array([np.nanstd(np.array(record["per_seed"][key], dtype=float))
                               for record in history])  # null (diverged) -> NaN
            ax.fill_between(epochs, np.subtract(values, spread), np.add(values, spread),
                            color=line.get_color(), alpha=0.2, linewidth=0)
        # The higher final value is labelled above its line end, the lower below, so that
        # labels of curves ending close together do not overprint each other.
        lift = 6 if key == finals[-1] else -6
        ax.annotate(f"{values[-1]:.4f}", (epochs[-1], values[-1]), xytext=(4, lift),
                    textcoords="offset points", va="center", color=line.get_color())
    ax.set_xlabel("epoch")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.margins(x=0.12)  # room for the final-value labels
    fig.tight_layout()
    fig.savefig(path)
    return path


def prediction_grid(images, predicted, actual, class_names, path: str | Path,
                    columns: int = 5, format: str | None = None) -> Path:
    """A grid of test images titled with predicted and actual class; wrong ones in red.

    `format` (one of image_formats()) is the file's; without it, the path's suffix says it,
    and a path with no suffix gets ".png" added (matplotlib's way). With it, the file is
    written at `path` exactly."""
    rows = -(-len(images) // columns)
    fig = figure(figsize=(2.2 * columns, 2.5 * rows), dpi=100)
    axes = fig.subplots(rows, columns, squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for ax, image, pred, true in zip(axes.ravel(), images, predicted, actual):
        wrong = pred != true
        ax.imshow(_shown(image), cmap="gray")
        color = "red" if wrong else "black"
        ax.set_title(f"{'x ' if wrong else ''}pred: {class_names[pred]}\ntrue: {class_names[true]}",
                     fontsize=8, color=color)
        if wrong:  # a red frame, visible even in a thumbnail
            ax.axis("on")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor("red")
                spine.set_linewidth(2.5)
    fig.tight_layout()
    fig.savefig(path, format=format)
    return Path(path)


def _shown(image):
    """What imshow can draw: gray or RGB as is; a frame stack (H, W, F) as its first, middle
    and last frames side by side, so that a clip's motion is visible in one thumbnail."""
    channels = image.shape[-1]
    if channels in (1, 3):
        return image[..., 0] if channels == 1 else image
    return np.concatenate([image[..., 0], image[..., channels // 2], image[..., -1]], axis=1)
