"""What every command-line entry point shares: one-line errors, --debug, quiet libraries, and
an end that explains itself (jaxnin.guard)."""
import argparse
import dataclasses
import logging
import os
import re
import select
import sys
import threading
from pathlib import Path
from typing import Callable, Mapping, Sequence

from jaxnin import guard
from jaxnin.errors import JaxninError
from jaxnin.options import COUNT, INT32_MAX, SEED, Range, check_values, flag_fields, option, value_type
from jaxnin.terminal import LineHandler

# dest -> the flag a user types, of the command being run: library errors name a field in
# backticks (`batch_size`), and the command line says it as its flag (--batch-size).
_FLAGS: dict[str, str] = {}


def run_main(main: Callable[[Sequence[str]], int | None], argv: Sequence[str] | None = None) -> int:
    """Run `main(argv)`; a JaxninError becomes one line on stderr and exit code 2.

    Any other exception is a bug: one line too (exit code 1), naming --debug, which shows
    tracebacks and what the libraries log. Standard error stays the terminal's: libraries are
    quieted at their source, so that a native crash, faulthandler and the progress bar still
    reach the user.
    """
    from_command_line = argv is None
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    _quiet_libraries(debug)
    guard.saving_into(None)  # nothing of this command's is saved yet
    guard.keeping(None)
    if from_command_line:
        guard.install()
        enable_compile_cache()
    if debug:
        return main([a for a in argv if a != "--debug"]) or 0
    try:
        return main(argv) or 0
    except JaxninError as err:
        code = _say(f"error: {in_flags(str(err))}", 2)
        if from_command_line:
            guard.interrupted_exit(code)  # where a signal made this error: ends here
        return code
    except BrokenPipeError:
        if not _stdout_reader_gone():
            raise  # another pipe's (a child's): a bug, said by the clause below
        # `... | head`: the output's reader has ended; the run stops, saying what it keeps.
        _stdout_to_devnull()  # or the interpreter's last flush fails again, with a traceback
        return _say("error: standard output was closed by its reader (a pipe such as `| head` "
                    f"ended), so this command stopped; {guard.kept_line()}", 2)
    except (KeyboardInterrupt, Exception) as err:  # noqa: BLE001 -- see below
        if isinstance(err, KeyboardInterrupt) or guard.signalled():
            # Outside fit's training (which says it itself), or a KeyboardInterrupt that
            # surfaced as another error inside a library's code: say what is kept.
            code = _say(f"error: interrupted (Ctrl-C or SIGTERM); {guard.kept_line()}", 2)
            if from_command_line:
                guard.interrupted_exit(code)
            return code
        # Anything else is a bug: the one line points to --debug for the rest.
        first_line = (str(err).splitlines() or [""])[0]
        return _say(f"error: internal error ({type(err).__name__}: {first_line}); rerun with "
                    "--debug for the traceback, and please report it", 1)


# What argparse takes for a negative number where a value is expected: its own pattern
# (-1, -.5) misses -1e-06, -inf and -nan, so that `--lr -inf` was "expected one argument"
# instead of the range's answer. No jaxnin flag looks like a number.
NEGATIVE_NUMBER = re.compile(r"^-(\d[\d_]*(\.[\d_]*)?|\.\d[\d_]*)([eE][+-]?\d+)?$"
                             r"|^-(inf|infinity|nan)$", re.IGNORECASE)


class ArgumentParser(argparse.ArgumentParser):
    """argparse whose usage errors are one line too (argparse prints usage plus the error),
    whose flags name the fields in the errors of the library (see in_flags), and which takes
    every negative number as a value, -1e-06 and -inf too (see NEGATIVE_NUMBER)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._negative_number_matcher = NEGATIVE_NUMBER  # argparse's, read by _parse_optional

    def error(self, message):
        raise JaxninError(f"{message} (see {self.prog} --help)")

    def parse_args(self, args=None, namespace=None):
        # The first long flag of each: a recipe's own alias (video's --clips-dir) comes first.
        _FLAGS.update({action.dest: next(f for f in action.option_strings if f.startswith("--"))
                       for action in self._actions
                       if any(f.startswith("--") for f in action.option_strings)})
        return super().parse_args(args, namespace)


def path_arg(text: str) -> str:
    """argparse's type of every argument that names a file or folder: an empty one is refused
    (it would read as "not given", or as the current folder)."""
    if not text:
        raise argparse.ArgumentTypeError("an empty path names no file or folder; name one (a "
                                         "flag left out takes its default)")
    return text


def in_flags(message: str) -> str:
    """A library message with each `field` it names said as the command's flag (--field),
    or as the plain name where the command has no such flag."""
    return re.sub(r"`([A-Za-z_][A-Za-z0-9_]*)`", lambda m: _FLAGS.get(m[1], m[1]), message)


# --- flags made from option fields (jaxnin.options) -------------------------------------------

def command_parser(prog: str, doc: str, options=None) -> ArgumentParser:
    """A command's parser: `doc` (its module's docstring) as the help's text, one flag per
    option of `options` (an options dataclass instance, its values shown as the defaults), and
    --debug (which run_main reads). A command adds its positionals and its own flags to it."""
    parser = ArgumentParser(prog=prog, description=doc,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    if options is not None:
        add_flags(parser, options)
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def add_flags(parser, defaults, *, help_overrides: Mapping[str, str] | None = None,
              aliases: Mapping[str, tuple[str, ...]] | None = None) -> None:
    """One flag per option field of `defaults`' dataclass, its help ending in `defaults`' value.

    Flags default to None, so that `given` can tell what the user typed from what they did not.
    """
    for field in flag_fields(type(defaults)):
        meta, name = field.metadata, field.name
        help_text = (help_overrides or {}).get(name, meta["help"])
        shown = getattr(defaults, name)
        kind = value_type(field)
        kwargs = {"action": "store_true"} if kind is bool else {
            "type": path_arg if meta.get("path") else kind, "choices": meta["choices"]}
        parser.add_argument(*(aliases or {}).get(name, ()), "--" + name.replace("_", "-"),
                            dest=name, default=None,
                            help=help_text + ("" if shown is None else f" (default: {shown})"),
                            **kwargs)


@dataclasses.dataclass(frozen=True)
class DistributedOptions:
    """The distributed runtime's flags (see jaxnin.train.sharding.initialize_distributed)."""
    distributed: bool = option(False, "train over several processes (hosts) with "
                               "jax.distributed; without the three flags below JAX reads them "
                               "from the environment (JAX_COORDINATOR_ADDRESS, SLURM, Open "
                               "MPI, ...)")
    coordinator: str | None = option(None, "address HOST:PORT of process 0's coordinator "
                                     "service (implies --distributed)")
    num_processes: int | None = option(None, "how many processes take part", within=COUNT)
    process_id: int | None = option(None, "this process's rank, 0..N-1",
                                    within=Range(0, INT32_MAX - 1))


def add_distributed_flags(parser: argparse.ArgumentParser) -> None:
    """--coordinator, --num-processes, --process-id and --distributed (cluster auto-detection)."""
    add_flags(parser, DistributedOptions())


def initialize_from_flags(args: argparse.Namespace) -> bool:
    """The distributed runtime as the flags of add_distributed_flags ask (see
    jaxnin.train.sharding.initialize_distributed). Returns whether the run is distributed."""
    from jaxnin.train.sharding import initialize_distributed

    flags = options_from(DistributedOptions, args)
    return initialize_distributed(flags.coordinator, flags.num_processes, flags.process_id,
                                  auto=flags.distributed)


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The options of every tool over a finished run (whose folder, RUN_DIR, comes first);
    a tool's own options extend these."""
    data_dir: str | None = option(None, "where the dataset's files are, if not as in the run",
                                  path=True)
    seed: int | None = option(None, "for a run of several seeds (--seeds K): which seed's "
                              "model [the first]", within=SEED)


def add_run_flags(parser, options: RunOptions = RunOptions()) -> None:
    """RUN_DIR, then a flag per option of `options` (RunOptions or a tool's extension of it)."""
    parser.add_argument("run_dir", type=path_arg,
                        help="a finished run's workdir (it holds run.json)")
    add_flags(parser, options)


def options_from(cls, args, **fixed):
    """Options dataclass `cls` from parsed flags (each made by add_flags): the typed values,
    converted, else `cls`' defaults, with `fixed` for fields that have no flag. Every value
    is checked against its declared range before the command does any work: a JaxninError
    names the first field out of range (run_main says it as the flag)."""
    options = cls(**given(args, cls), **fixed)
    check_values(options)
    return options


def given(args, cls) -> dict:
    """The option values of dataclass `cls` that were typed on the command line, converted."""
    typed = {}
    for field in flag_fields(cls):
        value = getattr(args, field.name, None)
        if value is not None:
            convert = field.metadata["convert"]
            typed[field.name] = convert(value) if convert else value
    return typed


def interrupt_on_sigterm() -> None:
    """SIGTERM (a cluster's pre-emption, `kill`) takes the same clean path as Ctrl-C.

    Commands get this from guard.install already; kept for code that runs recipes in-process.
    """
    import signal

    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


COMPILE_CACHE_MAX_BYTES = 2 * 2**30  # least recently used programs go first beyond this


def enable_compile_cache() -> None:
    """JAX's persistent compilation cache in `<jaxnin cache>/xla`, so that a second run of a
    recipe starts training within seconds; JAXNIN_COMPILE_CACHE=0 turns it off, and
    JAXNIN_COMPILE_CACHE=DIR puts it in DIR.

    Every program is kept, however small (JAX skips those compiled in under a second by
    default), so that a second run compiles nothing at all. Only where JAX is already loaded:
    a command that never loads it (the bench's PyTorch side) must not pay for it.
    """
    jax, chosen = sys.modules.get("jax"), os.environ.get("JAXNIN_COMPILE_CACHE", "")
    if jax is None or chosen == "0":
        return
    from jaxnin.data.dataset import resolve_cache_dir

    named = chosen not in ("", "1")
    try:
        folder = Path(chosen).expanduser() if named else resolve_cache_dir() / "xla"
        folder.mkdir(parents=True, exist_ok=True)
        if not os.access(folder, os.W_OK | os.X_OK):
            raise PermissionError(13, "not writable")
    except (JaxninError, OSError) as err:
        if named:  # a folder the user chose must not be dropped without a word
            why = getattr(err, "strerror", None) or err
            print(f"warning: JAXNIN_COMPILE_CACHE={chosen} cannot be used ({why}); compiling "
                  "without a persistent cache: set it to a writable folder, or to 0",
                  file=sys.stderr, flush=True)
        return  # the default's: the data loader names an unusable cache folder itself
    jax.config.update("jax_compilation_cache_dir", str(folder))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    try:  # JAX bounds the cache only with filelock; without it, setting a bound breaks it
        import filelock  # noqa: F401
        jax.config.update("jax_compilation_cache_max_size", COMPILE_CACHE_MAX_BYTES)
    except ImportError:
        pass


def _say(line: str, code: int) -> int:
    try:
        print(line, file=sys.stderr, flush=True)
    except OSError:  # stderr is gone too (`2>&1 | head`): the exit code is all that is left
        pass
    return code


def _stdout_reader_gone() -> bool:
    """Whether standard output is a pipe whose reading end is closed."""
    try:
        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(events & select.POLLERR for _, events in poller.poll(0))
    except (AttributeError, OSError, ValueError):  # no poll (not POSIX), or no real stdout
        return False


def _stdout_to_devnull() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        pass


def _quiet_libraries(debug: bool) -> None:
    """Each library's notes silenced where they are made, not by discarding stderr."""
    # Progress and notes go to stdout, so that stderr holds nothing but errors.
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True,
                        handlers=[LineHandler(sys.stdout)])  # never onto a progress bar's row
    # TensorFlow's and XLA's C++ logs below ERROR (read when TF or jaxlib first loads).
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "0" if debug else "2")
    quiet = logging.WARNING if debug else logging.CRITICAL
    # Orbax and TensorFlow log through absl, including tracebacks of failed saves that jaxnin
    # reports itself; asyncio reports the same failures from Orbax's event loop.
    for name in ("absl", "asyncio", "tensorflow", "orbax"):
        logging.getLogger(name).setLevel(quiet)
    # JAX reports at INFO each optional backend it probed and did not find (libtpu on every
    # CPU or GPU host): noise to a user, kept for --debug.
    logging.getLogger("jax").setLevel(logging.INFO if debug else logging.WARNING)
    # Libraries' deprecation and user warnings speak to developers: shown with --debug only.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(logging.WARNING if debug else logging.CRITICAL)
    if not debug:
        # After a failure that jaxnin reports in its own line (a full disk, say), Orbax's and
        # tensorstore's callbacks on other threads fail too ("Event loop is closed") and print
        # bare tracebacks through these hooks; run_main handles everything of the main thread.
        # tensorstore reports them from its C++ threads with PyErr_WriteUnraisable, which
        # prints a bare traceback through sys.unraisablehook (seen in CI after a full disk).
        sys.excepthook = _stray_traceback
        threading.excepthook = lambda args: _stray_traceback(args.exc_type, args.exc_value,
                                                              args.exc_traceback)
        sys.unraisablehook = lambda args: _stray_traceback(args.exc_type, args.exc_value,
                                                            args.exc_traceback)


def _stray_traceback(kind, value, traceback) -> None:
    logging.getLogger("jaxnin.stray").debug("a library thread failed: %s: %s", kind.__name__,
                                            value)
