"""Shared fixtures: the real MNIST-format data in ../shared/data, loaded once per session."""
from pathlib import Path

import pytest

from jaxnin.data.vision import load_dataset

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "fashion_mnist").is_dir():
        pytest.skip(f"real data not found in {SHARED_DATA}")
    return SHARED_DATA


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
