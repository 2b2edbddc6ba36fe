"""Training: pure steps over a TrainState, optax optimizers, Orbax checkpoints, and fit()."""
