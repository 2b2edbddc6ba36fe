"""Files that no reader ever sees half written, by this process or another.

Each write goes to a temporary file beside its target (same folder, so same file system),
which then takes the target's place in one rename (`os.replace`: atomic on POSIX and Windows).
An interrupted write (an error, Ctrl-C, a SIGTERM turned into an exception) leaves the target
as it was and removes the temporary file. Imports nothing beyond the standard library: the
bench's PyTorch children write through it too.
"""
import contextlib
import json
import math
import os
import secrets
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """A new temporary path beside `path` to write to; when the block ends without an
    exception the file written there replaces `path`, otherwise it is removed.

    The name is chosen before the file exists, inside the `try`, so an interrupt cannot fall
    between its creation and the cleanup (as it could with tempfile.mkstemp); it is random, so
    processes writing the same target at once never share one.
    """
    path = Path(path)
    tmp = path.parent / f".{path.name}-{secrets.token_hex(4)}.tmp"
    try:
        yield tmp
        move(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)  # gone after a move; a partial write otherwise


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
