"""Wall-clock accounting that keeps XLA compile time apart from training time."""
import time

import jax
from jax import monitoring

_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


class CompileClock:
    """The seconds JAX spends tracing, lowering and compiling while the clock is open.

    with CompileClock() as clock: ...; clock.seconds

    Tracing a jitted function traces the jitted functions it calls too, and each reports its
    own duration, so the events nest. The clock therefore keeps each event as an interval
    (it is reported when it ends) and counts the length of their union, never a second twice.
    """

    def __init__(self):
        self._intervals = []
        self._requests = 0  # programs XLA was asked for: compiled, or read from the disk cache
        self.cache_hits = 0  # of those, read from JAX's persistent compilation cache

    @property
    def seconds(self) -> float:
        total, covered_to = 0.0, float("-inf")
        for start, end in sorted(self._intervals):
            total += max(0.0, end - max(start, covered_to))
            covered_to = max(covered_to, end)
        return total

    @property
    def compiles(self) -> int:
        """Programs XLA really compiled (not found in memory nor in the disk cache)."""
        return self._requests - self.cache_hits

    def __enter__(self):
        monitoring.register_event_listener(self._count)
        monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        monitoring.unregister_event_listener(self._count)
        monitoring.unregister_event_duration_listener(self._listen)

    def _count(self, event: str, **_) -> None:
        self.cache_hits += event == "/jax/compilation_cache/cache_hits"

    def _listen(self, event: str, duration: float, **_) -> None:
        self._requests += event == _COMPILE_EVENTS[-1]
        if event in _COMPILE_EVENTS:
            end = time.perf_counter()
            self._intervals.append((end - duration, end))


def timed(fn, *args, **kwargs):
    """(result, wall seconds, compile seconds) of fn(*args, **kwargs), result made ready."""
    result, wall, clock = clocked(fn, *args, **kwargs)
    return result, wall, clock.seconds


def clocked(fn, *args, **kwargs):
    """(result, wall seconds, CompileClock) of fn(*args, **kwargs), result made ready."""
    start = time.perf_counter()
    with CompileClock() as clock:
        result = jax.block_until_ready(fn(*args, **kwargs))
    return result, time.perf_counter() - start, clock
