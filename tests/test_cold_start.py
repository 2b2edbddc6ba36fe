"""A second run of the same command compiles nothing: JAX's persistent compilation cache, on by
default under the jaxnin cache folder (issue 17)."""
import json
import os
import subprocess
import sys

TIMING = ("epoch_time_s", "examples_per_s", "train_time_s", "eval_time_s", "compile_time_s",
          "compiles", "compile_cache_hits")


def lenet_run(shared_data, data_cache, workdir, compile_cache):
    env = {**os.environ, "JAXNIN_CACHE_DIR": str(data_cache),
           "JAXNIN_COMPILE_CACHE": str(compile_cache)}
    done = subprocess.run([sys.executable, "-m", "jaxnin.experiments.mnist_lenet", "--data-dir",
                           str(shared_data), "--workdir", str(workdir), "--epochs", "2",
                           "--limit-train", "1024", "--limit-test", "500"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads((workdir / "history.json").read_text())


def test_a_second_run_compiles_nothing_and_trains_the_same(shared_data, mnist, data_cache,
                                                          tmp_path):
    first = lenet_run(shared_data, data_cache, tmp_path / "first", tmp_path / "xla")
    second = lenet_run(shared_data, data_cache, tmp_path / "second", tmp_path / "xla")
    assert first[0]["compiles"] > 0 and first[0]["compile_cache_hits"] == 0
    assert [r["compiles"] for r in second] == [0, 0]
    assert second[0]["compile_cache_hits"] == first[0]["compiles"]
    strip = lambda history: [{k: v for k, v in r.items() if k not in TIMING} for r in history]
    assert strip(second) == strip(first)


def test_the_cache_is_off_with_jaxnin_compile_cache_0(monkeypatch):
    import jax

    from jaxnin.cli import enable_compile_cache

    monkeypatch.setenv("JAXNIN_COMPILE_CACHE", "0")
    before = jax.config.jax_compilation_cache_dir
    enable_compile_cache()
    assert jax.config.jax_compilation_cache_dir == before
