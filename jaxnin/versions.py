"""Installed library versions, as runs and bench rows record them."""
from importlib import metadata


def installed(distribution: str) -> str | None:
    """The installed version of `distribution` (a pip name), None where it is absent."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None
