"""What runs and bench rows record of their environment: installed library versions, the
cores this process may use, and the commit of a checkout."""
import os
import subprocess
from importlib import metadata
from pathlib import Path


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


def git_commit(folder: Path, changed_under: tuple[str, ...] = ()) -> str | None:
    """HEAD of the git checkout that holds `folder`; None outside one (an installed wheel) or
    without git. With `changed_under` (pathspecs relative to `folder`), marked
    " + uncommitted changes" where files there differ from it, untracked ones included."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True,
                              timeout=5).stdout.strip()

    try:
        commit = git("rev-parse", "HEAD")
        changed = commit and changed_under and git("status", "--porcelain", "--",
                                                   *changed_under)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return f"{commit} + uncommitted changes" if changed else (commit or None)
