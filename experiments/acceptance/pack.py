"""One .tar.gz of the records a call wrote, small enough to come back from a device host.

Members are relative to --out, so `tar -xzf ARCHIVE -C experiments` puts them in place. A
device host hands back files of at most 16 MiB: where the records are larger, the largest
non-JSON files (curves, logs) are left out, one by one, and named in
`acceptance/omitted-from-archive.txt` inside it; the JSON records and the tables always go.
"""
import io
import tarfile
from pathlib import Path

from jaxnin.errors import JaxninError
from jaxnin.files import write_bytes

LIMIT_BYTES = 16 * 2**20
KEEP_SUFFIXES = (".json", ".md")


def pack(out: Path, paths: list[Path], archive: Path, limit: int = LIMIT_BYTES) -> list[Path]:
    """Writes `archive` atomically from the files under `paths`; returns the ones left out.
    An archive that cannot be written (the command checks its path before any run, but a
    folder may appear there meanwhile) is one line naming it, the records kept in `out`."""
    files = sorted({f for p in paths if p.exists()
                    for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file()})
    omitted: list[Path] = []
    while True:
        data = _tar(out, [f for f in files if f not in omitted], omitted)
        if len(data) <= limit:
            break
        droppable = [f for f in files if f not in omitted and f.suffix not in KEEP_SUFFIXES]
        if not droppable:
            raise JaxninError(f"--archive {archive} cannot hold the JSON records, {len(data)} "
                              f"bytes packed, within {limit}; they are kept in {out}: pack "
                              "fewer runs a call (--runs)")
        omitted.append(max(droppable, key=lambda f: f.stat().st_size))
    try:
        if archive.is_dir():  # os.replace would say only "Is a directory", of its temp file
            raise IsADirectoryError(21, "it is a folder, not a file")
        archive.parent.mkdir(parents=True, exist_ok=True)
        write_bytes(archive, data)
    except OSError as err:
        raise JaxninError(f"--archive {archive} cannot be written ({err.strerror or err}); the "
                          f"records are kept in {out}: choose another --archive and rerun the "
                          "same command (recorded runs are skipped)") from None
    return omitted


def _tar(out: Path, files: list[Path], omitted: list[Path]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for f in files:
            tar.add(f, arcname=str(f.relative_to(out)))
        if omitted:
            note = "\n".join(str(f.relative_to(out)) for f in omitted).encode() + b"\n"
            info = tarfile.TarInfo("acceptance/omitted-from-archive.txt")
            info.size = len(note)
            tar.addfile(info, io.BytesIO(note))
    return buffer.getvalue()
