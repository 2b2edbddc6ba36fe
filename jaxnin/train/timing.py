"""Wall-clock accounting that keeps XLA compile time apart from training time."""
import time

import jax
from jax import monitoring

_COMPILE_EVENTS = ("/jax/core/compile/jaxpr_trace_duration",
                   "/jax/core/compile/jaxpr_to_mlir_module_duration",
                   "/jax/core/compile/backend_compile_duration")


class CompileClock:
    """Sums the seconds JAX spends tracing, lowering and compiling while the clock is open.

    with CompileClock() as clock: ...; clock.seconds
    """

    def __init__(self):
        self.seconds = 0.0

    def __enter__(self):
        monitoring.register_event_duration_secs_listener(self._listen)
        return self

    def __exit__(self, *exc):
        monitoring.unregister_event_duration_listener(self._listen)

    def _listen(self, event: str, duration: float, **_) -> None:
        if event in _COMPILE_EVENTS:
            self.seconds += duration


def timed(fn, *args, **kwargs):
    """(result, wall seconds, compile seconds) of fn(*args, **kwargs), result made ready."""
    start = time.perf_counter()
    with CompileClock() as clock:
        result = jax.block_until_ready(fn(*args, **kwargs))
    return result, time.perf_counter() - start, clock.seconds
