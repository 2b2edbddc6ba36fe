"""Stopping a child process: SIGTERM first, then SIGKILL if it has not exited in time.

jaxnin's commands turn SIGTERM into the same clean stop as Ctrl-C (the epoch in hand is saved,
the error is one line), so a caller that runs a recipe as a child gives it `grace_s` to do so.
"""
import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator

from jaxnin import guard

KILL_WAIT_S = 10.0  # after SIGKILL: only the kernel is left to act
# A caller stopped by Ctrl-C or SIGTERM gives its child this long, then SIGKILL: within
# guard's deadline, so that the caller still says its own line, and the whole tree ends within
# seconds. A child that is a jaxnin command saves an epoch within that, or loses that epoch.
INTERRUPTED_GRACE_S = guard.GRACE_S - 1.5


def is_running(pid: int) -> bool:
    """Whether process `pid` exists on this machine (True where that cannot be told: another
    user's process, or not POSIX, where os.kill(pid, 0) would kill it)."""
    if os.name != "posix":
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (OSError, OverflowError):  # PermissionError: alive, someone else's
        return True
    return True


def kill_groups(pgids) -> None:
    """SIGKILL to each process group in `pgids` (those gone already are skipped)."""
    for pgid in pgids:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:  # gone already
            pass


def stop(child: subprocess.Popen, grace_s: float, group: bool = False) -> int | None:
    """Stops `child` and returns its exit code (None if even SIGKILL left it running).

    SIGTERM, then `grace_s` seconds for it to exit, then SIGKILL. With `group`, each signal
    goes to the child's whole process group (its own children too): the child must have been
    started with `start_new_session=True`, or the group would be the caller's own.
    """
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, KILL_WAIT_S)):
        try:
            if group:
                os.killpg(child.pid, sig)
            elif sig == signal.SIGTERM:
                child.terminate()
            else:
                child.kill()
        except ProcessLookupError:  # already gone (a group's last process too)
            return child.poll()
        try:
            return child.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    return child.poll()


@contextlib.contextmanager
def group(argv: list[str], **popen) -> Iterator[subprocess.Popen]:
    """`subprocess.Popen(argv, **popen)` in a session of its own, ended with its whole tree if
    the caller does not wait for it to the end.

    Any exception inside the `with` (the KeyboardInterrupt of a Ctrl-C or SIGTERM above all)
    stops the child's process group (see stop; INTERRUPTED_GRACE_S) before it goes on; should
    the caller's process end at guard's deadline instead, or at a second Ctrl-C, guard kills
    the group. A terminal's Ctrl-C does not reach the group itself: the caller must forward
    it, as here. Descendants that start sessions of their own are not reached.
    """
    # A signal between Popen's return and owns_group would leave the child running on its
    # own: held until the group is owned, then raised inside the `try` that stops it.
    guard.hold_interrupts()
    try:
        child = subprocess.Popen(argv, start_new_session=True, **popen)
        guard.owns_group(child.pid)
    except BaseException:
        guard.release_interrupts()
        raise
    try:
        guard.release_interrupts()
        yield child
    except BaseException:
        stop(child, INTERRUPTED_GRACE_S, group=True)
        raise
    finally:
        guard.disowns_group(child.pid)
