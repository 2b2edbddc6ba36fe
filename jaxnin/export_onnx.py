"""ONNX export of a finished run, checked against onnxruntime on a real test batch.

    python -m jaxnin.export_onnx RUN_DIR [--checkpoint best_loss|best_acc|latest] [--out PATH]
                                 [--batch N] [--tolerance T] [--data-dir DIR]

Writes RUN_DIR/model.onnx from the run's best-loss checkpoint (as seed 000 saves it next to
its best model). The graph takes the images exactly as the dataset stores them, so a user
feeds raw frames and gets logits:

  input  "images": uint8 [batch, H, W, C], NHWC, pixel values 0-255, batch dynamic
  output "logits": float32 [batch, num_classes], no softmax

Scaling to [0, 1] and the run's bilinear resize (two matmuls) are part of the graph. The
model's metadata_props hold the class names (JSON), the checkpoint kind and epoch, the model
and its options. Before writing, the export runs in onnxruntime on the first --batch test
images and must match JAX's logits within --tolerance (max abs difference, fp32).

A bfloat16 run keeps fp32 weights; ONNX Runtime has no bf16 convolution on the CPU, so the
export computes in fp32 with those weights, and the line printed also gives how far that is
from the run's own bf16 logits.
"""
import contextlib
import dataclasses
import json
import logging
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

import jaxnin
from jaxnin import files
from jaxnin.cli import RunOptions, add_run_flags, command_parser, options_from, run_main
from jaxnin.data.pipeline import preprocess, resize_matrix
from jaxnin.errors import JaxninError
from jaxnin.models import create_model
from jaxnin.options import COUNT, POSITIVE, option
from jaxnin.train.checkpoint import BEST_BY
from jaxnin.runs import Run, load_run
from jaxnin.train.run_dir import Restored

INPUT_NAME, OUTPUT_NAME, BATCH_AXIS = "images", "logits", "batch"
# The lowest opset jax2onnx 0.17.1 writes valid graphs for (at 17 its ReduceMean still takes
# the opset-18 axes input); a low opset lets older runtimes load the file.
OPSET = 18
TOLERANCE = 1e-4
INSTALL_HINT = ('pip install "onnx>=1.20.1" "onnx-ir>=0.2.1" "onnxruntime>=1.24.1" && '
                'pip install --no-deps "jax2onnx>=0.17.1"')


@dataclasses.dataclass(frozen=True)
class ExportOptions(RunOptions):
    """export_onnx's options, beside RUN_DIR."""
    checkpoint: str = option("best_loss", "which checkpoint to export",
                             choices=("latest", *BEST_BY))
    out: str | None = option(None, "where to write the model [RUN_DIR/model.onnx]", path=True)
    batch: int = option(64, "test images the export is checked on", within=COUNT)
    tolerance: float = option(TOLERANCE, "largest max abs logit difference accepted",
                              within=POSITIVE)


def main(argv) -> int:
    parsed = _parser().parse_args(argv)
    args = options_from(ExportOptions, parsed)
    onnx, ort, to_onnx = _exporters()
    run = load_run(parsed.run_dir, args.seed, args.data_dir)
    restored = run.restored(args.checkpoint)
    model = create_model(run.config.model, num_classes=len(run.class_names), dtype=jnp.float32,
                         **run.config.model_options)
    params = jax.device_get(restored.state.params)
    image_shape = tuple(run.dataset().test_images.shape[1:])
    exported = to_onnx_model(to_onnx, model, params, image_shape, run.config.resize)
    onnx.helper.set_model_props(exported, metadata(run, restored))
    exported.doc_string = (f"jaxnin {run.config.model} from {run.workdir.name}: raw uint8 NHWC "
                           f"images in, float32 logits over {len(run.class_names)} classes out")
    serialized = exported.SerializeToString()

    images = run.dataset().test_images[:args.batch]
    logits = forward(model, params, images, run.config.resize)
    diff = max_abs_diff(onnxruntime_logits(ort, serialized, images), logits)
    if not diff <= args.tolerance:  # also catches NaN
        raise JaxninError(f"onnxruntime's logits differ from JAX's by {diff:.3g} (more than "
                          f"--tolerance {args.tolerance:g}) on {len(images)} test images of "
                          f"{run.workdir}: nothing written; please report it")
    out = Path(args.out) if args.out else run.workdir / "model.onnx"
    write_atomically(out, serialized)
    print(summary_line(out, len(serialized), run, restored, image_shape, logits, diff,
                       args.tolerance) + bf16_note(run, restored, images, logits))
    return 0


def to_onnx_model(to_onnx, model, params, image_shape: tuple[int, int, int],
                  resize: int | None):
    """The ModelProto of uint8 images [batch, *image_shape] -> logits, weights as initializers."""
    # jax2onnx swaps jax.image.resize for its own while it traces, so the resize matrices
    # (computed with jax.image.resize and cached) must exist before it starts.
    if resize is not None:
        resize_matrix(image_shape[0], resize), resize_matrix(image_shape[1], resize)
    spec = jax.ShapeDtypeStruct((BATCH_AXIS, *image_shape), jnp.uint8)
    with _conversion_logs_muted():
        return to_onnx(lambda images: _apply(model, params, images, resize), [spec],
                       model_name=f"jaxnin_{model.__class__.__name__}", opset=OPSET,
                       input_names=[INPUT_NAME], output_names=[OUTPUT_NAME])


def forward(model, params, images: np.ndarray, resize: int | None) -> np.ndarray:
    """JAX's logits for `images`, the reference the export is checked against."""
    return np.asarray(jax.jit(_apply, static_argnums=(0, 3))(model, params, images, resize))


def _apply(model, params, images, resize):
    # Dropout is off: the models' `train` defaults to False, as at evaluation.
    return model.apply({"params": params}, preprocess(images, resize))


def onnxruntime_logits(ort, serialized: bytes, images: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(serialized, providers=["CPUExecutionProvider"])
    return session.run([OUTPUT_NAME], {INPUT_NAME: np.asarray(images, np.uint8)})[0]


def max_abs_diff(a: np.ndarray, b: np.ndarray) -> float:
    if np.shape(a) != np.shape(b):
        raise JaxninError(f"onnxruntime's logits have shape {np.shape(a)}, JAX's "
                          f"{np.shape(b)}: the export is wrong; please report it")
    return float(np.max(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))))


def metadata(run: Run, restored: Restored) -> dict[str, str]:
    """The model's metadata_props: what a user of the file needs without the run at hand."""
    config = run.config
    return {
        "class_names": json.dumps(list(run.class_names)),
        "input": f"{INPUT_NAME}: uint8 NHWC [{BATCH_AXIS}, H, W, C], pixel values 0-255 as "
                 "stored; /255 and the bilinear resize are in the graph",
        "output": f"{OUTPUT_NAME}: float32 [{BATCH_AXIS}, num_classes], no softmax",
        "resize": str(config.resize),
        "model": config.model,
        "model_options": json.dumps(dict(config.model_options)),
        "dataset": config.dataset,
        "checkpoint": restored.kind,
        "epoch": str(restored.epoch),
        "test_loss": str(restored.record.get("test_loss")),
        "test_acc": str(restored.record.get("test_acc")),
        "trained_dtype": config.dtype,
        "run": run.workdir.absolute().name,
        "jaxnin_version": jaxnin.__version__,
    }


def summary_line(out: Path, size: int, run: Run, restored: Restored, image_shape,
                 logits: np.ndarray, diff: float, tolerance: float) -> str:
    dims = ", ".join(str(d) for d in image_shape)
    return (f"wrote {out} ({size / 1e6:.1f} MB, opset {OPSET}): {run.config.model} from the "
            f"{restored.kind} checkpoint of epoch {restored.epoch}; input {INPUT_NAME} "
            f"uint8 [{BATCH_AXIS}, {dims}], output {OUTPUT_NAME} float32 [{BATCH_AXIS}, "
            f"{len(run.class_names)}]; onnxruntime vs JAX on {len(logits)} test images (|logits| "
            f"up to {np.abs(logits).max():.3g}): max abs diff {diff:.2e} (tolerance {tolerance:g})")


def bf16_note(run: Run, restored: Restored, images: np.ndarray,
              fp32_logits: np.ndarray) -> str:
    """For a bf16 run, how far the fp32 export is from the run's own bf16 logits."""
    dtype, state = run.config.dtype, restored.state
    if dtype == "float32":
        return ""
    own = np.asarray(jax.jit(state.apply_fn)({"params": state.params},
                                             preprocess(images, run.config.resize)))
    return (f"; the run computes in {dtype}: exported in float32 with its float32 weights, "
            f"max abs diff {max_abs_diff(own, fp32_logits):.2e} from its {dtype} logits")


def write_atomically(path: Path, content: bytes) -> None:
    """`content` into `path`, atomically (a reader never sees half a model); a folder that
    cannot be written is one line."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        files.write_bytes(path, content)
    except OSError as err:
        raise JaxninError(f"cannot write {path} ({err.strerror}): choose another --out") from None


def _exporters():
    """(onnx, onnxruntime, jax2onnx.to_onnx), or a one-line error saying how to install them."""
    try:
        import onnx
        import onnxruntime
        from jax2onnx import to_onnx
    except ImportError as err:
        raise JaxninError(f"ONNX export needs {err.name or 'jax2onnx, onnx and onnxruntime'}, "
                          f"which is not installed: {INSTALL_HINT}") from None
    return onnx, onnxruntime, to_onnx


@contextlib.contextmanager
def _conversion_logs_muted():
    """jax2onnx logs its arguments on the root logger, warns with a traceback for each optional
    library its plugin scan cannot import (equinox, dm-pix: jaxnin's models need none), and
    onnx_ir warns about shape constants; the parity check is what tells whether it worked."""
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(logging.NOTSET)


def _parser():
    parser = command_parser("python -m jaxnin.export_onnx", __doc__)
    add_run_flags(parser, ExportOptions())
    return parser


if __name__ == "__main__":
    sys.exit(run_main(main))
