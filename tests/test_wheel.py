"""What `pip install jaxnin` gives: the library and the recipes' command lines, never the
repository's tools (the bench, the acceptance run) nor their PyTorch references; and the jobs
that the library and the tools share each done by one helper."""
import contextlib
import os
import re
import shutil
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from jaxnin import files, processes
from procs import alive, gone_within

REPO = Path(__file__).resolve().parents[1]
LIBRARY = ("jaxnin/__init__.py", "jaxnin/cli.py", "jaxnin/files.py", "jaxnin/processes.py",
           "jaxnin/versions.py", "jaxnin/run.py", "jaxnin/export_onnx.py",
           "jaxnin/data/vision.py", "jaxnin/models/__init__.py", "jaxnin/train/steps.py",
           "jaxnin/experiments/fashion_nin.py", "jaxnin/experiments/mnist_lenet.py")
# setuptools' own build backend as pyproject.toml requires it; older ones reject its license.
BUILD_BACKEND = (77,)


def _setuptools_here() -> tuple[int, ...]:
    from importlib import metadata

    try:
        return tuple(int(p) for p in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return ()


def test_the_wheel_of_a_clean_copy_holds_the_library_only(tmp_path):
    """Built as a user would from a copy of the committed tree (`git archive HEAD`: nothing
    untracked, no stale build/ folder), the wheel holds jaxnin/ alone."""
    if shutil.which("git") is None or not (REPO / ".git").exists():
        pytest.skip("not a git checkout")
    source = tmp_path / "src"
    source.mkdir()
    archive = subprocess.run(["git", "archive", "--format=tar", "HEAD"], cwd=REPO,
                             capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(source)], input=archive, check=True)
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
               str(tmp_path / "dist"), str(source)]
    if _setuptools_here() >= BUILD_BACKEND:  # the backend is here: no fresh build venv
        command.append("--no-build-isolation")
    built = subprocess.run(command, capture_output=True, text=True, timeout=600,
                           env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (tmp_path / "dist").glob("jaxnin-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    code = [n for n in names if ".dist-info/" not in n]
    assert code and all(n.startswith("jaxnin/") for n in code), code
    assert not [n for n in names if re.search(r"bench|acceptance|torch_reference", n)]
    assert set(LIBRARY) <= set(names)


# Each job's one helper, and the calls that only it may make.
ONE_HELPER = {
    "jaxnin/files.py": re.compile(r"\bos\.(replace|rename)\(|\.rename\(|shutil\.move\("),
    "jaxnin/processes.py": re.compile(r"\bkillpg\(|\.terminate\(|\.kill\(|\.send_signal\("),
}


def test_atomic_writes_and_stopping_a_child_each_have_one_helper():
    """The library and the tools write files atomically through jaxnin.files, and stop
    children through jaxnin.processes: the calls that do either appear nowhere else."""
    found = {helper: [] for helper in ONE_HELPER}
    for path in sorted([*REPO.glob("jaxnin/**/*.py"), *REPO.glob("experiments/**/*.py")]):
        relative = path.relative_to(REPO).as_posix()
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for helper, pattern in ONE_HELPER.items():
                if pattern.search(line.split("#")[0]):
                    found[helper].append(f"{relative}:{number}")
    for helper, places in found.items():
        assert places and {p.split(":")[0] for p in places} == {helper}, places


def test_an_atomic_write_replaces_the_file_whole_or_not_at_all(tmp_path):
    target = tmp_path / "out.json"
    files.write_json(target, {"loss": float("nan"), "acc": [0.5, float("inf")]})
    assert target.read_text() == '{\n  "loss": null,\n  "acc": [\n    0.5,\n    null\n  ]\n}\n'
    files.write_bytes(target, b"old")
    with pytest.raises(KeyboardInterrupt):
        with files.replacing(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and sorted(tmp_path.iterdir()) == [target]
    files.write_text(target, "new – text\n")
    assert target.read_text(encoding="utf-8") == "new – text\n"
    (tmp_path / "staged").mkdir()
    (tmp_path / "staged" / "a").write_text("a")
    files.move(tmp_path / "staged", tmp_path / "published")
    assert (tmp_path / "published" / "a").read_text() == "a"


@pytest.mark.parametrize("group", [False, True])
def test_stop_sends_sigterm_then_sigkill_to_a_child_or_its_group(tmp_path, group):
    """A child that ignores SIGTERM is killed after the grace; with `group`, its own child
    goes with it."""
    pid_file = tmp_path / "grandchild"
    code = ("import signal, subprocess, sys, time\n"
            "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
            "g = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])\n"
            f"open({str(pid_file)!r}, 'w').write(str(g.pid))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")
    child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                             start_new_session=group)
    try:
        assert child.stdout.readline() == "ready\n"
        grandchild = int(pid_file.read_text())
        assert processes.stop(child, grace_s=0.5, group=group) == -signal.SIGKILL
        assert gone_within([grandchild], 10) if group else alive(grandchild)
    finally:
        child.kill()
        with contextlib.suppress(ProcessLookupError, ValueError, NameError):
            os.kill(grandchild, signal.SIGKILL)
    quick = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert processes.stop(quick, grace_s=10) == -signal.SIGTERM  # SIGTERM was enough
    assert processes.stop(quick, grace_s=10) == -signal.SIGTERM  # gone already: its code
