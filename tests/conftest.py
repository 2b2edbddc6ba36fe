"""Shared fixtures: the real MNIST-format data in ../shared/data, loaded once per session.

Where the data is missing the tests that need it skip, except in CI (env CI=true), where a
missing ../shared/data fails them: a green CI run must have run them.
"""
import os
from pathlib import Path
from typing import Mapping

import pytest

from jaxnin.data.vision import DATASETS, load_dataset
from jaxnin.versions import usable_cores

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def require_shared_data(path: Path, environ: Mapping[str, str]) -> Path:
    """`path` if it holds every dataset's folder; else a skip, or a failure in CI."""
    missing = [name for name in DATASETS if not (path / name).is_dir()]
    if not missing:
        return path
    message = f"real data ({', '.join(missing)}) not found in {path}"
    if environ.get("CI", "").strip().lower() in ("true", "1"):
        pytest.fail(f"{message}; CI=true, so the tests that need it must run, not skip",
                    pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return require_shared_data(SHARED_DATA, os.environ)


@pytest.fixture(scope="session")
def data_cache(tmp_path_factory) -> Path:
    """One jaxnin cache for the session, so that subprocesses load in well under a second."""
    return tmp_path_factory.mktemp("jaxnin_cache")


@pytest.fixture(scope="session")
def fashion(shared_data, data_cache):
    return load_dataset("fashion_mnist", shared_data, cache_dir=data_cache)


@pytest.fixture(scope="session")
def mnist(shared_data, data_cache):
    return load_dataset("mnist", shared_data, cache_dir=data_cache)


@pytest.hookimpl(optionalhook=True)  # known only where pytest-xdist is installed
def pytest_xdist_auto_num_workers(config) -> int:
    """One worker a core, at most 4: each worker's XLA already runs a thread a core."""
    return min(4, usable_cores())
