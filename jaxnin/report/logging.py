"""Where a run's per-epoch numbers go: console, progress bar, TensorBoard and history.json."""
import json
import os
import sys
from pathlib import Path

import numpy as np
from tqdm import tqdm


def _import_summary_writer():
    """tensorboardX's SummaryWriter, imported without PyTorch.

    tensorboardX imports torch, if installed, only to accept torch tensors; jaxnin logs Python
    floats. On a host with torch (every GPU box with the bench extra) that import cost about
    2 s of every run's cold start, so torch is hidden while tensorboardX loads.
    """
    if "torch" in sys.modules:  # already paid for
        from tensorboardX import SummaryWriter
        return SummaryWriter
    sys.modules["torch"] = None  # makes `import torch` raise ImportError
    try:
        from tensorboardX import SummaryWriter
    finally:
        del sys.modules["torch"]
    return SummaryWriter


SummaryWriter = _import_summary_writer()

# TensorBoard tags, grouped as seed 002 does ("Loss" and "Acc" panels with train and test).
SCALARS = {"Loss/train": "train_loss", "Loss/test": "test_loss", "Acc/train": "train_acc",
           "Acc/test": "test_acc", "lr": "lr", "examples_per_s": "examples_per_s"}


class RunLog:
    """Records each epoch everywhere at once; history.json is rewritten atomically each time."""

    def __init__(self, workdir: Path, epochs: int, history: list[dict]):
        self.workdir = workdir
        self.history = list(history)
        self._tensorboard = SummaryWriter(str(workdir / "tensorboard"))
        self._bar = tqdm(total=epochs, initial=len(history), unit="epoch", dynamic_ncols=True,
                         disable=None)  # None: no bar when stderr is not a terminal

    def epoch(self, record: dict) -> None:
        self.history.append(record)
        write_json(self.workdir / "history.json", self.history)
        for tag, key in SCALARS.items():
            self._tensorboard.add_scalar(tag, record[key], record["epoch"])
        self._tensorboard.flush()
        self._bar.update(1)
        self._bar.set_postfix(loss=f"{record['train_loss']:.3f}", test_acc=f"{record['test_acc']:.3f}")
        tqdm.write(epoch_line(record))

    def close(self) -> None:
        self._bar.close()
        self._tensorboard.close()


def epoch_line(record: dict) -> str:
    """One console line per epoch, like seed 004's summary."""
    seeds = record.get("per_seed", {}).get("test_acc", [])
    spread = f" ± {np.std(seeds):.4f} ({len(seeds)} seeds)" if seeds else ""
    return (f"epoch {record['epoch']:>3}  train loss {record['train_loss']:.4f}  "
            f"train acc {record['train_acc']:.4f}  test loss {record['test_loss']:.4f}  "
            f"test acc {record['test_acc']:.4f}{spread}  lr {record['lr']:.3g}  "
            f"{record['epoch_time_s']:.1f} s  {record['examples_per_s']:,.0f} ex/s")


def final_lines(history: list[dict], device: str) -> str:
    """d2l's closing two lines: last epoch's metrics, then training throughput."""
    last = history[-1]
    examples = sum(r["examples_per_s"] * r["train_time_s"] for r in history)  # all replicas
    seconds = sum(r["train_time_s"] for r in history)
    return (f"loss {last['train_loss']:.3f}, train acc {last['train_acc']:.3f}, "
            f"test acc {last['test_acc']:.3f}\n{examples / seconds:.1f} examples/sec on {device}")


def write_json(path: Path, payload) -> None:
    """Write JSON so that a crash never leaves a half-written file behind."""
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(payload, indent=2) + "\n")
    os.replace(tmp, path)
