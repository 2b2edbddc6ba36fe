"""Like for like: the precision policy and the settings each bench row runs under.

Imports nothing of JAX or PyTorch: the parent declares every row's policy and settings from
here before a child runs it (so a skipped row still says what it would have run), and both
sides' children read the same names from here.

A float32 row runs under one of two policies, the same on both sides:
  * "strict": float32 matmuls and convolutions computed in float32
    (jax_default_matmul_precision="float32"; torch allow_tf32 False for matmuls and cuDNN).
  * "tf32": TensorFloat-32 for both (jax "tensorfloat32"; torch allow_tf32 True for both).
XLA's GPU default lets float32 use TF32 while PyTorch's default allows it for cuDNN
convolutions only, so neither default is left to decide a ratio. A CPU has no TF32: there
the tf32 rows are recorded, not run ("cpu: no tf32").
"""
import os
import sys

from jaxnin.versions import usable_cores

PRECISIONS = ("strict", "tf32")
JAX_MATMUL_PRECISION = {"strict": "float32", "tf32": "tensorfloat32"}
TORCH_ALLOW_TF32 = {"strict": False, "tf32": True}  # matmul and cudnn alike
# The seeds ran under PyTorch's defaults: TF32 for cuDNN convolutions, not for matmuls.
TORCH_DEFAULT = {"matmul_allow_tf32": False, "cudnn_allow_tf32": True}
CPU_NO_TF32 = ("cpu: no tf32 (float32 matmuls and convolutions are float32 on a CPU "
               "whatever the policy): the strict row is this computation")
NOT_ON_CPU = "the cpu reference runs only where the bench's device is the CPU"
# Modules a PyTorch child must never load: their import time would count against PyTorch.
JAX_FAMILY = ("jax", "jaxlib", "flax", "optax", "orbax", "chex", "tensorflow")
# Environment variables that change either side's speed; every row records them.
SPEED_ENV = ("XLA_FLAGS", "JAX_PLATFORMS", "JAX_DEFAULT_MATMUL_PRECISION",
             "JAX_COMPILATION_CACHE_DIR", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "OPENBLAS_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "TORCHINDUCTOR_CACHE_DIR",
             "TORCH_CUDNN_V8_API_DISABLED", "TF_CPP_MIN_LOG_LEVEL")
BF16_KEEPS_FP32 = {
    "jaxnin": "params, gradients, optimizer state, the logits and the softmax cross-entropy "
              "loss stay float32 (the model casts its input and computes in bf16, returning "
              "float32 logits); the resize matmuls run on float32 images under tf32",
    "torch": "params, gradients, optimizer state and the loss stay float32 (bf16 autocast "
             "casts conv and linear inputs; the logits are .float()ed before the loss); "
             "F.interpolate runs on float32; anything autocast leaves float32 runs under tf32",
}


def row_policy(side: str, kind: str, precision: str) -> dict:
    """What a row computes in which precision; `kind` is jaxnin's dtype or torch's variant."""
    if kind in ("bfloat16", "tuned"):
        return {"name": "bf16", "compute": "bfloat16", "fp32_leftovers": "tf32",
                "stays_fp32": BF16_KEEPS_FP32[side], **_switches(side, "tf32")}
    if kind == "seed_pipeline":
        return {"name": "torch-default", "compute": "float32",
                "matmul": "float32", "conv": "tf32 (cuDNN)", **TORCH_DEFAULT,
                "why": "as the seeds ran: PyTorch's defaults"}
    strict = precision == "strict"
    return {"name": precision, "compute": "float32", "matmul": "float32" if strict else "tf32",
            "conv": "float32" if strict else "tf32", **_switches(side, precision)}


def _switches(side: str, precision: str) -> dict:
    if side == "jaxnin":
        return {"jax_default_matmul_precision": JAX_MATMUL_PRECISION[precision]}
    allow = TORCH_ALLOW_TF32[precision]
    return {"matmul_allow_tf32": allow, "cudnn_allow_tf32": allow}


def not_run_reason(job: dict, platform: str | None) -> str | None:
    """Why a job is recorded but not run on this platform, or None to run it."""
    on_cpu = platform == "cpu"
    if on_cpu and job.get("precision") == "tf32":
        return CPU_NO_TF32
    if job.get("variant") == "cpu" and platform and not on_cpu:
        return NOT_ON_CPU
    return None


def speed_env(environ=None) -> dict:
    """The variables of SPEED_ENV set in `environ` (this process's by default), and the CPUs
    this process may use."""
    environ = os.environ if environ is None else environ
    env = {name: environ[name] for name in SPEED_ENV if name in environ}
    return {"env": env, "cpu_count": os.cpu_count(), "usable_cpus": usable_cores()}


def loaded(prefixes=JAX_FAMILY) -> list[str]:
    """The top-level packages of `prefixes` this process has imported."""
    return sorted({name.split(".")[0] for name in sys.modules} & set(prefixes))


# Where each row's data lives and what each step does to it.
DATA_PLACEMENT = {
    "jaxnin": "uint8 NHWC on the device, once; shuffle, gather, scale and resize (two "
              "matmuls) inside the jitted step",
    "seed_pipeline": "uint8 in host memory; a DataLoader (num_workers) PIL-resizes each image "
                     "on the CPU and copies each batch to the device",
    "fp32": "uint8 N1HW on the device, once; gather, scale and F.interpolate there per step",
    "tuned": "uint8 N1HW on the device, once; gather, scale, F.interpolate and channels_last "
             "there per step",
    "cpu": "float32 N1HW in [0, 1] in host memory, built once; gather and F.interpolate per "
           "step",
}


def declared_settings(job: dict) -> dict:
    """The settings of a job that the parent decides, before (and whether or not) it runs."""
    side, kind = job["side"], job.get("dtype") or job.get("variant")
    record = {"batch_size": job["batch_size"], "steps": job["steps"],
              "repeats": job["repeats"], "resize": job["resize"],
              "data_placement": DATA_PLACEMENT["jaxnin" if side == "jaxnin" else kind],
              "warmup": "one whole epoch (compiles)" if side == "jaxnin"
              else f"{job['warmup_steps']} steps"}
    if side == "torch":
        compiled = kind == "tuned" and job["compile"]
        record |= {"torch_compile": job["compile_mode"] if compiled else "off",
                   "cudnn_benchmark": kind == "tuned", "channels_last": kind == "tuned",
                   "fused_optimizer": kind == "tuned" and "where the device has it",
                   "host_sync_per_step": kind in ("seed_pipeline", "cpu")}
        if kind == "seed_pipeline":
            record["num_workers"] = job["num_workers"]
    return record


# The PyTorch side trains from the same run config (TrainConfig.to_json()) as jaxnin's, read as
# a plain dict. Every field is in exactly one of these (tests/test_bench.py checks, so a new
# field must be placed here): those it trains as jaxnin does; those it cannot mirror, with the
# only value it runs (any other is refused, in one line, never silently ignored); and those that
# do not change what is trained or timed.
TORCH_MIRRORED = ("model", "model_options", "dataset", "data_dir", "epochs", "batch_size",
                  "eval_batch_size", "optimizer", "lr", "momentum", "schedule", "step_size",
                  "gamma", "clip_norm", "resize", "dtype", "seed", "limit_train", "limit_test")
TORCH_ONLY_VALUE = {"warmup_steps": 0, "seeds": 1, "shard_params": False, "data_options": {}}
# Which checkpoints jaxnin keeps besides the latest; which library XLA:CPU runs jaxnin's
# convolutions with (PyTorch's loop uses its own, oneDNN's, whatever jaxnin's choice).
TORCH_IRRELEVANT = ("best", "cpu_convolutions")


def torch_refusal(config: dict) -> str | None:
    """Why the PyTorch side cannot train `config` as jaxnin does (one line), or None."""
    unknown = sorted(set(config) - set(TORCH_MIRRORED) - set(TORCH_ONLY_VALUE)
                     - set(TORCH_IRRELEVANT))
    if unknown:
        return f"the PyTorch side does not know config field(s) {', '.join(unknown)}"
    odd = [k for k, only in TORCH_ONLY_VALUE.items() if config.get(k, only) != only]
    if odd:
        return (f"the PyTorch side does not mirror {', '.join(f'{k}={config[k]!r}' for k in odd)}"
                f": it runs {', '.join(f'{k}={TORCH_ONLY_VALUE[k]!r}' for k in odd)} only")
    return None
