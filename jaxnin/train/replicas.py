"""K seeds of one run trained at once: their keys, and their metrics summed up per epoch.

Replica i of a K-seed run is the run that `--seed seed+i` alone would be: it gets the same
init key, the same shuffles and the same dropout masks. Records keep each seed's numbers under
"per_seed" and put their mean in the usual keys, so curves, checkpoints and logs work as for
a single run.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxnin.train.config import TrainConfig
from jaxnin.train.steps import mean_metrics

SPLIT_METRICS = ("train_loss", "train_acc", "test_loss", "test_acc")


def run_keys(config: TrainConfig, stream: int) -> jax.Array:
    """The key of `stream` (0: init, 1: epochs) for each seed: one key, or (K,) keys."""
    keys = [jax.random.fold_in(jax.random.key(seed), stream) for seed in config.seed_values]
    return keys[0] if config.seeds == 1 else jnp.stack(keys)


def fold_in(key: jax.Array, data: int) -> jax.Array:
    """jax.random.fold_in for one key or, element-wise, for a (K,) array of keys."""
    if key.ndim:
        return jax.vmap(jax.random.fold_in, in_axes=(0, None))(key, data)
    return jax.random.fold_in(key, data)


def per_seed_metrics(sums: dict) -> list[dict]:
    """[{"loss", "acc", "count", ...}] per replica from the sums of one run or of K stacked
    replicas (then each sum has a leading axis of K)."""
    sums = jax.device_get(sums)
    if np.ndim(sums["count"]) == 0:
        sums = {k: np.asarray(v)[None] for k, v in sums.items()}
    return [mean_metrics({k: v[i] for k, v in sums.items()}) for i in range(len(sums["count"]))]


def epoch_metrics(train: list[dict], test: list[dict], seeds: list[int]) -> dict:
    """The record's metrics: the mean over seeds, and with K > 1 each seed's own numbers.

    A seed whose loss is not finite is left out of the mean loss (and named in
    "diverged_seeds"), so one diverged seed does not hide what the others did; its accuracy
    still counts. Only when every seed diverged is the mean loss non-finite.
    """
    per_seed = {f"{split}_{name}": [float(m[name]) for m in metrics]
                for split, metrics in (("train", train), ("test", test)) for name in ("loss", "acc")}
    record = {key: _finite_mean(values) if key.endswith("loss") else float(np.mean(values))
              for key, values in per_seed.items()}
    if "dead_classes" in test[0]:  # the worst seed's count; each seed's under per_seed
        per_seed["dead_classes"] = [m["dead_classes"] for m in test]
        record["dead_classes"] = max(per_seed["dead_classes"])
        record["classes"] = test[0]["classes"]
    if len(seeds) > 1:
        record["per_seed"] = per_seed
        record["diverged_seeds"] = [seed for i, seed in enumerate(seeds) if not all(
            math.isfinite(per_seed[k][i]) for k in ("train_loss", "test_loss"))]
    return record


def seed_results(history: list[dict], seeds: list[int]) -> dict:
    """Each seed's final and best test accuracy, and their mean and std over seeds; with K > 1
    also "diverged_seeds": the seeds whose loss was not finite in any epoch (their accuracy
    still counts in the means)."""
    curves = np.array([r["per_seed"]["test_acc"] if "per_seed" in r else [r["test_acc"]]
                       for r in history])  # (epochs, K)
    results = {"seeds": seeds}
    for name, values in (("final", curves[-1]), ("best", curves.max(axis=0))):
        results[f"{name}_test_acc_per_seed"] = values.tolist()
        results[f"{name}_test_acc_mean"] = float(values.mean())
        results[f"{name}_test_acc_std"] = float(values.std())
    if len(seeds) > 1:
        diverged = {seed for r in history for seed in r.get("diverged_seeds", [])}
        results["diverged_seeds"] = [seed for seed in seeds if seed in diverged]
    return results


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return float(np.mean(finite)) if finite else math.nan
