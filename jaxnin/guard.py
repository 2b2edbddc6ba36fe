"""How a command ends, whatever ends it: signals obeyed within seconds, crashes explained.

* Ctrl-C and SIGTERM raise KeyboardInterrupt once (a repeat is ignored while the run saves
  and says what it kept). Python sees a signal only when the main thread runs Python code,
  which it may not do for minutes inside a compile or a long device call; so a thread woken
  by the signal itself (signal.set_wakeup_fd) ends the process `GRACE_S` seconds later if it
  is still alive, after one line saying what is saved.
* A native crash (SIGSEGV, SIGABRT, ...) prints where it happened (faulthandler), and a tiny
  watcher process, started once a run owns its workdir, then says what is saved: any death
  that skips Python's own exit (a crash, SIGKILL from the out-of-memory killer) closes the
  pipe it waits on without the "ended well" byte.
* Child process groups a command owns (owns_group) are killed whenever the command ends
  without stopping them itself: at the deadline, or at once on a second signal.
"""
import atexit
import contextlib
import faulthandler
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

GRACE_S = 5.0  # clusters give 10-30 s between SIGTERM and SIGKILL
_ENDED_WELL = b"k"
_state = {"installed": False, "checkpoints": None, "kept": None, "watcher": None,
          "signalled": False, "groups": set(), "holding": False, "held": False,
          "tidy": None}


def install(handler=None) -> None:
    """Signal handlers and crash reports for a command's process (call from the main thread)."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, handler or _interrupt_once)
    if _state["installed"]:  # by install_early: the handlers above replace its exit
        return
    _state["installed"] = True
    atexit.register(ended_well)
    faulthandler.enable(all_threads=True)
    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)
    signal.set_wakeup_fd(write_end, warn_on_full_buffer=False)
    threading.Thread(target=_deadline, args=(read_end,), daemon=True,
                     name="jaxnin-signal-deadline").start()


def install_early() -> None:
    """For `python -m jaxnin...` alone (jaxnin/__init__.py calls this first): see starting().
    Library users' processes are left alone."""
    argv = getattr(sys, "orig_argv", [])
    module = argv[argv.index("-m") + 1] if "-m" in argv[:-1] else ""
    if sys.argv[:1] != ["-m"] or not (module == "jaxnin" or module.startswith("jaxnin.")):
        return  # runpy sets sys.argv[0] to "-m" while it imports the module's packages
    starting()


def starting() -> None:
    """An entry point's first call, before its heavy imports: a signal while the command
    imports its libraries ends it at once with one line (nothing is saved yet); run_main's
    install() then takes over. Does nothing off the main thread or once installed."""
    if _state["installed"] or threading.current_thread() is not threading.main_thread():
        return
    install(_interrupt_while_starting)


def _interrupt_while_starting(signum, frame):
    print("error: interrupted (Ctrl-C or SIGTERM) while starting; nothing was saved: rerun the "
          "same command to start again", file=sys.stderr, flush=True)
    os._exit(2)


def signalled() -> bool:
    """Whether a Ctrl-C or SIGTERM has come (whatever error it then caused is its doing)."""
    return _state["signalled"]


def interrupted_exit(code: int) -> None:
    """After a signal and the command's line: end now, without the interpreter's teardown,
    which waits on (or crashes in) a compile still running in XLA's threads."""
    if not _state["signalled"]:
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    ended_well()
    _kill_groups()
    os._exit(code)


def saving_into(checkpoints: Path | None) -> None:
    """From now on, an abnormal end reports the epochs saved under `checkpoints` (None: none),
    unless the command said otherwise with keeping()."""
    _state["checkpoints"] = None if checkpoints is None else Path(checkpoints)
    if checkpoints is not None and _state["installed"] and _state["watcher"] is None:
        _state["watcher"] = _start_watcher(Path(checkpoints))


def keeping(describe: Callable[[], str] | None) -> None:
    """For a command whose work is not one run's epochs (a tool that runs recipes as children,
    a command that trains several runs): from now on an abnormal end says `describe()`, what
    is on disk and how to go on, instead of saved_line's (None: saved_line's again). It is
    called from the deadline thread too: it must be quick, never block and never raise."""
    _state["kept"] = describe


def kept_line() -> str:
    """What an abnormal end of this command leaves, and how to go on (see keeping)."""
    return _state["kept"]() if _state["kept"] else saved_line(_state["checkpoints"])


@contextlib.contextmanager
def tidying(tidy: Callable[[], None] | None):
    """Within this block, should the command end at once (its deadline, a second Ctrl-C), with
    no chance to run its own clean-up, `tidy()` runs first (None: nothing to tidy). It runs on
    the deadline thread while the main thread may be anywhere: it must be quick; what it raises
    is ignored."""
    _state["tidy"] = tidy
    try:
        yield
    finally:
        _state["tidy"] = None


def owns_group(pgid: int) -> None:
    """Process group `pgid` (a child started with start_new_session=True, and its own children)
    is this command's: should the command end without stopping it (its deadline, a second
    Ctrl-C, interrupted_exit), the group is killed first. jaxnin.processes.group does this for
    its children."""
    _state["groups"].add(pgid)


def disowns_group(pgid: int) -> None:
    """Group `pgid` has ended, or is no longer this command's to end."""
    _state["groups"].discard(pgid)


def hold_interrupts() -> None:
    """Until release_interrupts(), a Ctrl-C or SIGTERM is noted instead of raised (its
    deadline still counts from the signal): for the few lines that must not be cut in two,
    such as starting a child and owning its group. Only under this module's handlers, and
    only on the main thread (where Python runs signal handlers); elsewhere it does nothing."""
    if threading.current_thread() is threading.main_thread():
        _state["holding"] = True


def release_interrupts() -> None:
    """End hold_interrupts(): raise the KeyboardInterrupt of a signal that came meanwhile."""
    if threading.current_thread() is not threading.main_thread():
        return
    held, _state["holding"], _state["held"] = _state["held"], False, False
    if held:
        raise KeyboardInterrupt


def ended_well() -> None:
    """Tell the watcher that this process ends through Python (its own messages said how)."""
    watcher, _state["watcher"] = _state["watcher"], None
    if watcher is not None:
        try:
            os.write(watcher, _ENDED_WELL)
            os.close(watcher)
        except OSError:
            pass


def saved_line(checkpoints: Path | None) -> str:
    """What an abnormal end leaves: the epochs saved, and how to go on."""
    epoch = _latest_epoch(checkpoints)
    if epoch is None:
        return "nothing was saved: rerun the same command to start again"
    return (f"epochs up to {epoch} are saved in {checkpoints}: rerun the same command with "
            "--resume to continue")


def _interrupt_once(signum, frame):
    _state["signalled"] = True
    for sig in (signal.SIGINT, signal.SIGTERM):  # the run is stopping: a repeat reaches the
        signal.signal(sig, _repeat)              # deadline thread, which ends it at once
    if _state["holding"]:
        _state["held"] = True  # raised by release_interrupts
        return
    raise KeyboardInterrupt


def _repeat(signum, frame):
    pass


def _deadline(read_end: int) -> None:
    """Wait for a signal, then give the main thread GRACE_S seconds to end the process; a
    second Ctrl-C or SIGTERM ends it at once."""
    while True:
        signum = os.read(read_end, 1)[0]
        if signum in (signal.SIGINT, signal.SIGTERM):
            break
    first, deadline, why = signum, time.monotonic() + GRACE_S, None
    while why is None:
        left = deadline - time.monotonic()
        if left <= 0:
            why = (f"still busy {GRACE_S:.0f} s after {signal.Signals(first).name} (inside a "
                   "compile or a long device call), so stopped now")
        elif select.select([read_end], [], [], left)[0]:
            if os.read(read_end, 1)[0] in (signal.SIGINT, signal.SIGTERM):
                why = "stopped at once by a second Ctrl-C or SIGTERM"
    _kill_groups()  # first: its children must not outlive a process that says it stopped
    _tidy()
    print(f"error: {why}; {kept_line()}", file=sys.stderr, flush=True)
    ended_well()
    os._exit(128 + first)


def _tidy() -> None:
    tidy = _state["tidy"]
    if tidy is not None:
        try:
            tidy()
        except BaseException:  # nothing may stand between the signal and the end
            pass


def _kill_groups() -> None:
    """SIGKILL to every group this command owns: it ends now, with no time left to ask."""
    if _state["groups"]:  # registered by jaxnin.processes.group, so it is imported already
        from jaxnin.processes import kill_groups

        kill_groups(list(_state["groups"]))


def _latest_epoch(checkpoints: Path | None) -> int | None:
    if checkpoints is None:
        return None
    # Imported here, not above, so that a command starts without Orbax; a run that set
    # `checkpoints` has imported it already.
    from jaxnin.train.checkpoint import newest_saved_epoch
    return newest_saved_epoch(checkpoints)


_WATCHER = r"""
import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_IGN)
signal.signal(signal.SIGTERM, signal.SIG_IGN)
fd, checkpoints = int(sys.argv[1]), sys.argv[2]
said = b""
while True:
    chunk = os.read(fd, 16)
    if not chunk:
        break
    said += chunk
if not said:
    epoch = newest_saved_epoch(checkpoints)
    kept = (f"epochs up to {epoch} are saved in {checkpoints}: rerun the same command "
            "with --resume to continue" if epoch is not None else "nothing was saved")
    sys.stderr.write(f"error: the run died without a word (a native crash, named above if it "
                     f"was one, or a kill signal such as the out-of-memory killer's); {kept}\n")
"""


def _start_watcher(checkpoints: Path) -> int | None:
    """The watcher process; returns the pipe's write end (None where it cannot start)."""
    # Imported here, not above, as are inspect and subprocess: a SIGTERM that comes before
    # install_early has run kills the process silently (Python's default), so the imports
    # before it are kept to the few it needs.
    import inspect
    import subprocess

    from jaxnin.train.checkpoint import newest_saved_epoch  # see _latest_epoch
    read_end, write_end = os.pipe()
    try:
        # It asks the store which epochs are saved, with the store's own function as source:
        # without site-packages (python -S, to start light) the store module's Orbax is absent.
        script = inspect.getsource(newest_saved_epoch) + _WATCHER
        subprocess.Popen([sys.executable, "-S", "-c", script, str(read_end), str(checkpoints)],
                         pass_fds=(read_end,), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         start_new_session=True)
    except OSError:
        os.close(write_end)
        return None
    finally:
        os.close(read_end)
    return write_end
