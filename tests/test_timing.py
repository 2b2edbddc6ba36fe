"""Compile time is kept apart from training time, and never counted twice."""
import jax
import jax.numpy as jnp

from jaxnin.train.timing import CompileClock, timed


def test_nested_events_count_their_union_once():
    clock = CompileClock()
    for start, end in [(0.0, 2.0), (0.5, 1.5), (1.0, 2.5), (3.0, 4.0)]:
        clock._intervals.append((start, end))  # an outer trace holding two inner ones
    assert clock.seconds == 3.5


def test_compile_time_of_nested_jits_stays_within_the_wall_time():
    inner = jax.jit(lambda x: jnp.sin(x) @ x.T)
    outer = jax.jit(lambda x: inner(inner(x) + 1.0).sum())
    _, wall, compile_s = timed(outer, jnp.ones((64, 64)))
    assert 0 < compile_s <= wall
    _, _, again = timed(outer, jnp.ones((64, 64)))
    assert again == 0.0  # cached: nothing compiles the second time
