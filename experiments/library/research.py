"""A researcher's script over jaxnin's public API only (names in jaxnin.__all__).

    python experiments/library/research.py DATA_DIR WORKDIR

DATA_DIR holds mnist/ with the four standard .gz files (or pass "" to let tfds download
them); WORKDIR must not hold a run yet. The README's "Research code" section shows this file,
and tests/test_library.py runs it, so it keeps working.
"""
import sys

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

import jaxnin

data_dir, workdir = sys.argv[1] or None, sys.argv[2]

# (a) the tuned LeNet-5 recipe, shrunk in code, trained quietly; a Run comes back.
config = jaxnin.recipe("mnist_lenet.tuned").replace(
    epochs=3, limit_train=4096, limit_test=500, data_dir=data_dir)
seen = []
run = jaxnin.fit(config, workdir=workdir, callbacks=[seen.append])
assert [r["epoch"] for r in run.history] == [1, 2, 3] == [r["epoch"] for r in seen]
assert run.state.step == 3 * (4096 // 64)

# (b) the run folder opened again; best and latest states score exactly what was recorded.
loaded = jaxnin.load_run(workdir)
for checkpoint in ("best_loss", "latest"):
    scores = jaxnin.evaluate(loaded, "test", checkpoint=checkpoint)
    epoch = loaded.checkpoint_epochs[checkpoint]
    recorded = loaded.history[epoch - 1]
    assert scores["count"] == 500, scores
    assert (scores["loss"], scores["acc"]) == (recorded["test_loss"], recorded["test_acc"]), (
        checkpoint, scores, recorded)
best_epoch = min(loaded.history, key=lambda r: r["test_loss"])["epoch"]
assert loaded.checkpoint_epochs["best_loss"] == best_epoch
assert loaded.checkpoint_epochs["latest"] == 3

# (c) the jitted pieces in a loop of one's own, with an optimizer of one's own.
data = jaxnin.load_dataset("mnist", data_dir)
model = jaxnin.create_model("lenet", num_classes=10, activation="relu")
state = jaxnin.create_train_state(model, optax.adamw(1e-3), jax.random.key(0), (28, 28, 1))
for step in range(20):
    batch = {"image": data.train_images[step * 64:(step + 1) * 64],
             "label": data.train_labels[step * 64:(step + 1) * 64]}
    state, sums = jaxnin.train_step(state, batch, jax.random.key(step))
metrics = jaxnin.mean_metrics(jaxnin.eval_step(state, {"image": data.test_images[:500],
                                                      "label": data.test_labels[:500]}))
assert metrics["count"] == 500 and metrics["acc"] > 0.5, metrics


# (d) a NiN block inside a module of one's own, trained one step.
class Tiny(nn.Module):
    @nn.compact
    def __call__(self, x, train: bool = False):
        x = jaxnin.NiNBlock(features=16, kernel=5, stride=1, padding=2)(x)
        return jnp.mean(nn.Dense(10)(x), axis=(1, 2))


tiny = jaxnin.create_train_state(Tiny(), optax.sgd(0.1), jax.random.key(1), (28, 28, 1))
tiny, sums = jaxnin.train_step(tiny, {"image": data.train_images[:32],
                                      "label": data.train_labels[:32]}, jax.random.key(2))
assert int(tiny.step) == 1 and np.isfinite(float(sums["loss_sum"]))
