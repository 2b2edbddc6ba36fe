"""Long reproductions of recorded results; `python -m pytest -m slow` runs them."""
import json
import os
import subprocess
import sys

import pytest


@pytest.mark.slow
def test_tuned_lenet_reaches_0_99_on_mnist(shared_data, mnist, data_cache, tmp_path):
    """experiments/mnist_lenet/tuned: 0.9921 after 20 epochs (CPU, 2026-11-25)."""
    result = subprocess.run(
        [sys.executable, "-m", "jaxnin.experiments.mnist_lenet", "--data-dir", str(shared_data),
         "--tuned", "--workdir", str(tmp_path)],
        capture_output=True, text=True, timeout=1800,
        env={**os.environ, "JAXNIN_CACHE_DIR": str(data_cache)})
    assert result.returncode == 0, result.stderr
    history = json.loads((tmp_path / "history.json").read_text())
    assert len(history) == 20 and history[-1]["test_examples"] == 10_000
    assert history[-1]["test_acc"] >= 0.990, history[-1]
