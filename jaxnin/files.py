"""Files that no reader ever sees half written, by this process or another.

Each write goes to a temporary file beside its target (same folder, so same file system),
which then takes the target's place in one rename (`os.replace`: atomic on POSIX and Windows).
An interrupted write (an error, Ctrl-C, a SIGTERM turned into an exception) leaves the target
as it was and removes the temporary file. Imports nothing beyond the standard library: the
bench's PyTorch children write through it too.

A process killed outright (kill -9, a power cut) cannot remove its temporary file: every
temporary name says which process made it (`temp_beside`), and `remove_stale` removes those
whose maker is gone; the commands call it on the folders they write in when they start.
"""
import contextlib
import hashlib
import json
import math
import os
import platform
import re
import secrets
import shutil
import time
from pathlib import Path
from typing import Iterator

from jaxnin import processes

# After this long untouched, a temporary file is removed even where its maker cannot be
# checked (another machine on a shared file system, another PID namespace, Windows).
STALE_AFTER_S = 24 * 3600

# .<target>-<8 hex>.<machine>-<pid>.tmp (older jaxnin: .<target>-<8 hex>.tmp, no maker)
_TEMP_NAME = re.compile(r"^\.(?P<target>.+)-[0-9a-f]{8}(?:\.(?P<machine>[0-9a-f]{8})-(?P<pid>\d+))?"
                        r"\.tmp$")


def _this_machine() -> str:
    """This host and PID namespace, hashed: a PID means this process only within both."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        namespace = ""
    return hashlib.sha256(f"{platform.node()} {namespace}".encode()).hexdigest()[:8]


def temp_beside(path: Path) -> Path:
    """A new hidden name beside `path` for a temporary file or folder: random, so that
    processes writing the same target never share one, and naming this process, so that
    `remove_stale` can tell when its maker is gone."""
    path = Path(path)
    return path.parent / f".{path.name}-{secrets.token_hex(4)}.{_this_machine()}-{os.getpid()}.tmp"


def _maker_gone(machine: str | None, pid: str | None) -> bool:
    if machine != _this_machine():
        return False
    try:
        return not processes.is_running(int(pid))
    except (TypeError, ValueError):
        return False


def remove_stale(folder: Path) -> list[Path]:
    """Removes the temporary files and folders in `folder` (not below it) that no process
    will finish: their maker is no longer running on this machine, or they were untouched
    for STALE_AFTER_S. One that a live process is writing now is left alone. Returns what it
    removed; a folder that is missing or cannot be listed or cleaned is left as it is."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    for entry in entries:
        match = _TEMP_NAME.match(entry.name)
        if match is None:
            continue
        try:
            idle = time.time() - entry.stat(follow_symlinks=False).st_mtime
            if not (_maker_gone(match["machine"], match["pid"]) or idle > STALE_AFTER_S):
                continue
            if entry.is_dir(follow_symlinks=False):
                shutil.rmtree(entry.path)
            else:
                os.unlink(entry.path)
        except OSError:
            continue  # gone already (another process cleaned it), or not ours to remove
        removed.append(Path(entry.path))
    return removed


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A new temporary path beside `path` to write to; when the block ends without an
    exception the file written there replaces `path`, otherwise it is removed.

    The name is chosen before the file exists, inside the `try`, so an interrupt cannot fall
    between its creation and the cleanup (as it could with tempfile.mkstemp); it is random, so
    processes writing the same target at once never share one.
    """
    path = Path(path)
    tmp = temp_beside(path)
    try:
        yield tmp
        move(tmp, path)
    finally:
        try:
            tmp.unlink(missing_ok=True)  # gone after a move; a partial write otherwise
        except OSError:  # a read-only folder, where it was never made: keep the write's error
            pass


def write_bytes(path: Path, data: bytes) -> None:
    """`path` holds `data`, written atomically."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: Path, text: str) -> None:
    """`path` holds `text` (UTF-8), written atomically."""
    with replacing(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json(path: Path, payload) -> None:
    """`payload` as strict, indented JSON (a non-finite number becomes null), written
    atomically."""
    write_text(path, json.dumps(finite(payload), indent=2, allow_nan=False) + "\n")


def finite(value):
    """`value` with every NaN or infinity replaced by None (JSON has no such numbers)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


def move(source: Path, target: Path) -> None:
    """Renames the file or folder `source` to `target` in one step, on one file system: a
    file `target` is replaced; a folder `target` must be absent or empty."""
    os.replace(source, target)
