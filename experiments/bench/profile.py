"""What one training epoch spends its time on, from a JAX profiler trace.

`profile_epoch` traces one call with `jax.profiler.trace(create_perfetto_trace=True)` and reads
back the Chrome-format events it writes: on a GPU the kernels on the device's streams, on a CPU
the XLA executor threads. The summary names the kernels that dominate and how busy the device
was over the epoch's wall time (a low share means the host, not the device, sets the pace).
"""
import collections
import gzip
import json
import re
import time
from pathlib import Path

import jax

# Kernel-name fragments of convolutions and matmuls (cuDNN, cuBLAS, CUTLASS, XLA's own). A
# heuristic for GPU kernels. XLA:CPU's library fusions ("ynn_fusion.12") do not say what they
# hold, so on a CPU the compiled programs' HLO says it (`fusion_contents`).
MATH_FRAGMENTS = ("conv", "gemm", "xmma", "cutlass", "cudnn", "wgrad", "dgrad", "fprop",
                  "matmul", "dot")
COPY_FRAGMENTS = ("copy", "transpose", "memcpy", "memset")
# XLA:CPU's executor threads also record their waits for thread-pool helpers: no kernel.
WAIT_FRAGMENTS = ("threadpool::await", "threadpool::wait")


def profile_epoch(run, trace_dir: Path, top: int = 10, hlo_texts: tuple[str, ...] = ()) -> dict:
    """Trace `run()` (which must block until its work is done) and summarise the trace;
    `hlo_texts` (compiled programs' `as_text()`) name what each fusion of theirs computes."""
    trace_dir.mkdir(parents=True, exist_ok=True)
    with jax.profiler.trace(str(trace_dir), create_perfetto_trace=True):
        start = time.perf_counter()
        run()
        wall = time.perf_counter() - start
    traces = sorted(trace_dir.rglob("perfetto_trace.json.gz"), key=lambda p: p.stat().st_mtime)
    if not traces:
        return {"trace_dir": str(trace_dir), "wall_s": wall, "top": [],
                "note": "the profiler wrote no perfetto trace"}
    return summarize_trace(traces[-1], wall, top, fusion_contents(hlo_texts))


def fusion_contents(hlo_texts) -> dict[tuple[str, str], str]:
    """{(module, fusion op): the opcodes its computation holds, space-separated}, from
    compiled HLO text: what a CPU trace's "ynn_fusion.12" (YNNPACK running a convolution, a
    dot or a reduction) really is."""
    contents = {}
    for text in hlo_texts:
        module = re.search(r"^HloModule ([\w.\-]+)", text, re.M)
        bodies, current = {}, None
        for line in text.splitlines():
            opened = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{$", line)
            if opened:
                current = bodies.setdefault(opened.group(1), [])
            elif current is not None and (op := re.search(r" = \S+ ([\w\-]+)\(", line)):
                current.append(op.group(1))
        for name, body in re.findall(r"%([\w.\-]+) = .*? calls=%([\w.\-]+)", text):
            contents[module.group(1) if module else "", name] = " ".join(bodies.get(body, []))
    return contents


def summarize_trace(path: Path, wall_s: float, top: int = 10,
                    contents: dict[tuple[str, str], str] | None = None) -> dict:
    """Busy time, its split into math / copies / other, and the `top` kernels by time.

    `contents` (`fusion_contents`) classifies a fusion by the opcodes inside it, not its name.
    """
    events = json.loads(gzip.decompress(Path(path).read_bytes()))
    events = events["traceEvents"] if isinstance(events, dict) else events
    processes = {e["pid"]: e["args"]["name"] for e in events
                 if e.get("ph") == "M" and e.get("name") == "process_name"}
    threads = {(e["pid"], e.get("tid")): e["args"]["name"] for e in events
               if e.get("ph") == "M" and e.get("name") == "thread_name"}
    spans = [e for e in events if e.get("ph") == "X" and "dur" in e]
    work = [e for e in spans if processes.get(e["pid"], "").startswith("/device:")]
    thread = lambda e: threads.get((e["pid"], e.get("tid")), "")
    if any(thread(e).startswith("Stream") for e in work):
        # Only the kernels themselves: derived lines ("XLA Modules", "XLA Ops", "Steps")
        # span the same time again.
        work = [e for e in work if thread(e).startswith("Stream")]
    source = "device streams"
    if not work:  # a CPU: XLA runs the program on its own executor threads
        executor = [e for e in spans if thread(e).startswith("tf_XLA")]
        work = [e for e in executor if not e["name"].startswith(
            ("end:", "ThunkExecutor", "ThreadpoolListener"))]
        work = _until_done(work, [e for e in executor if e["name"].startswith("end: ")])
        source = "XLA executor threads on the host"
    totals, inside = collections.Counter(), {}
    for event in work:
        totals[event["name"]] += event["dur"] / 1e6  # microseconds
        args = event.get("args", {})
        inside.setdefault(event["name"], (contents or {}).get(
            (args.get("hlo_module", ""), args.get("hlo_op", event["name"])), ""))
    # A GPU stream runs one kernel at a time; XLA:CPU runs independent kernels side by side,
    # so there the busy time is the time some kernel was in progress, counted once.
    # Shares are of the kernels' summed time, which on a CPU may exceed the busy time.
    kernel_s = sum(totals.values())
    busy = kernel_s if source == "device streams" else _covered(work)
    categories = collections.Counter()
    for name, seconds in totals.items():
        categories[_category(name, inside[name])] += seconds
    return {"trace": str(path), "source": source, "wall_s": wall_s, "busy_s": busy,
            "busy_share_of_wall": busy / wall_s if wall_s else None,
            "kernel_s": kernel_s,
            "by_category": {k: {"seconds": v, "share": v / kernel_s} for k, v in
                            categories.most_common()} if kernel_s else {},
            "top": [{"name": name, "seconds": seconds, "share": seconds / kernel_s,
                     **({"holds": inside[name]} if inside[name] else {})}
                    for name, seconds in totals.most_common(top)]}


def _until_done(kernels: list[dict], ends: list[dict]) -> list[dict]:
    """The CPU kernels, each lasting from its launch to its "end: NAME" event where it has one.

    XLA:CPU's executor records a kernel's span only while it launches it; a kernel that runs
    on the intra-op thread pool (its Eigen convolutions, for one) goes on after that span
    closes and is done at its "end: NAME" event. Counting only the launch spans made LeNet's
    epoch look three quarters idle (lenet-cpu-epoch.md). Launches and ends pair in order, per
    process and name."""
    pending = collections.defaultdict(list)
    for end in sorted(ends, key=lambda e: e["ts"]):
        pending[end["pid"], end["name"][len("end: "):]].append(end["ts"] + end.get("dur", 0))
    out = []
    for kernel in sorted(kernels, key=lambda e: e["ts"]):
        done = pending.get((kernel["pid"], kernel["name"]))
        while done and done[0] < kernel["ts"]:  # an end whose launch the trace missed
            done.pop(0)
        finish = done.pop(0) if done else kernel["ts"] + kernel["dur"]
        out.append({**kernel, "dur": max(kernel["dur"], finish - kernel["ts"])})
    return out


def _covered(events: list[dict]) -> float:
    """Seconds during which at least one of `events` was in progress."""
    total, start, stop = 0.0, None, None
    for event in sorted(events, key=lambda e: e["ts"]):
        if stop is None or event["ts"] > stop:
            total += 0 if stop is None else stop - start
            start, stop = event["ts"], event["ts"] + event["dur"]
        else:
            stop = max(stop, event["ts"] + event["dur"])
    return (total + (0 if stop is None else stop - start)) / 1e6


def _category(name: str, holds: str = "") -> str:
    """By the opcodes a fusion holds where they are known, else by the kernel's name."""
    if any(fragment in name.lower() for fragment in WAIT_FRAGMENTS):
        return "waits for the runtime's thread pool"
    if holds:
        opcodes = set(holds.split()) - {"parameter", "bitcast", "constant", "tuple"}
        if opcodes & {"convolution", "dot"}:
            return "convolutions and matmuls"
        if opcodes and opcodes <= {"copy", "transpose"}:
            return "copies and transposes"
        return "other kernels (elementwise, reductions, pools)"
    lowered = name.lower()
    if any(fragment in lowered for fragment in MATH_FRAGMENTS):
        return "convolutions and matmuls"
    if any(fragment in lowered for fragment in COPY_FRAGMENTS):
        return "copies and transposes"
    return "other kernels (elementwise, reductions, pools)"
