"""What runs and bench rows record of their environment: installed library versions and the
cores this process may use."""
import os
from importlib import metadata


def installed(distribution: str) -> str | None:
    """The installed version of `distribution` (a pip name), None where it is absent."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def usable_cores() -> int:
    """The cores this process may run on (its affinity where the OS has one, as Linux does)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
