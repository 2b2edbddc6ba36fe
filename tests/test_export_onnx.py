"""ONNX export of finished runs: the file, its metadata, and parity with onnxruntime.

The runs are tiny and trained on random images (no dataset files needed); the export CLI loads
them back through `jaxnin.runs.load_data`, which the `synthetic_data` fixture answers.
"""
import json
import re
import shutil

import numpy as np
import pytest

from jaxnin import export_onnx
from jaxnin.cli import run_main
from jaxnin.data.dataset import ImageDataset
from jaxnin import runs
from jaxnin.train import run_dir
from jaxnin.train.config import TrainConfig
from jaxnin.run import fit
from faults import one_error_line

onnx = pytest.importorskip("onnx", reason="ONNX export needs onnx: " + export_onnx.INSTALL_HINT)
ort = pytest.importorskip("onnxruntime", reason="needs onnxruntime: " + export_onnx.INSTALL_HINT)
pytest.importorskip("jax2onnx", reason="needs jax2onnx: " + export_onnx.INSTALL_HINT)

CLASSES = ("hello", "thanks", "yes", "no", "please")
DATASETS = {}  # name -> ImageDataset, as load_data would return it


def random_dataset(name, shape, seed, count=64):
    """Random uint8 images of `shape` (H, W, C) and labels over CLASSES."""
    rng = np.random.default_rng(seed)
    images = lambda: rng.integers(0, 256, (count, *shape), dtype=np.uint8)
    labels = lambda: rng.integers(0, len(CLASSES), count).astype(np.int32)
    DATASETS[name] = ImageDataset(name, images(), labels(), images(), labels(), CLASSES,
                                  "synthetic")
    return DATASETS[name]


@pytest.fixture(autouse=True)
def synthetic_data(monkeypatch):
    def load_data(name, data_dir=None, options=None):
        return DATASETS[name]
    monkeypatch.setattr(runs, "load_data", load_data)


def finished_run(tmp_path_factory, name, shape, **config):
    """A one-epoch run of `config` on random images of `shape`, in its own workdir."""
    data = random_dataset(name, shape, seed=len(DATASETS))
    config = TrainConfig(dataset=name, epochs=1, batch_size=16, limit_train=32, limit_test=32,
                         eval_batch_size=32, **config)
    workdir = tmp_path_factory.mktemp(name)
    fit(config, data, workdir)
    return workdir


@pytest.fixture(scope="module")
def nin_frames(tmp_path_factory):
    """Seed 000's shape of problem: 8 stacked 40x40 frames as channels, NiN at its minimum 67."""
    return finished_run(tmp_path_factory, "frames", (40, 40, 8), model="nin", resize=67,
                        optimizer="adam", lr=1e-3)


@pytest.fixture(scope="module")
def lenet_bf16(tmp_path_factory):
    """Seed 002's LeNet-5 (sigmoid, average pools, flatten) at 28x28, computing in bfloat16."""
    return finished_run(tmp_path_factory, "digits", (28, 28, 1), model="lenet", resize=None,
                        optimizer="momentum", lr=1e-2, dtype="bfloat16",
                        best=("best_loss", "best_acc"))


def export(argv, capsys):
    code = run_main(export_onnx.main, [str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def reported_diff(out):
    return float(re.search(r"max abs diff (\S+) \(tolerance", out).group(1))


def reference_logits(workdir, kind, images):
    """JAX's logits of the checkpoint, restored independently of the export module."""
    config = run_dir.run_config(workdir)
    restored = run_dir.restore_checkpoint(workdir, config, DATASETS[config.dataset], (kind,))
    model = export_onnx.create_model(config.model, num_classes=len(CLASSES),
                                      **config.model_options)
    return export_onnx.forward(model, restored.state.params, images, config.resize)


def graph_io(model):
    """(name, element type, shape) of the single input and output; dim_param for free axes."""
    def describe(value):
        tensor = value.type.tensor_type
        return value.name, tensor.elem_type, [d.dim_param or d.dim_value for d in tensor.shape.dim]
    (inp,), (out,) = model.graph.input, model.graph.output
    return describe(inp), describe(out)


def test_nin_on_frame_stacks_exports_raw_uint8_frames_to_logits(nin_frames, capsys):
    code, out, err = export([nin_frames, "--batch", "16"], capsys)
    assert code == 0, err
    model = onnx.load(nin_frames / "model.onnx")
    onnx.checker.check_model(model, full_check=True)
    assert graph_io(model) == (("images", onnx.TensorProto.UINT8, ["batch", 40, 40, 8]),
                               ("logits", onnx.TensorProto.FLOAT, ["batch", len(CLASSES)]))
    props = {p.key: p.value for p in model.metadata_props}
    assert json.loads(props["class_names"]) == list(CLASSES)
    assert (props["model"], props["checkpoint"], props["epoch"], props["resize"]) == (
        "nin", "best_loss", "1", "67")
    assert 0 <= reported_diff(out) <= 1e-4 and "from the best_loss checkpoint of epoch 1" in out

    # A batch size other than the checked one, straight from the file.
    images = DATASETS["frames"].test_images[5:8]
    session = ort.InferenceSession(str(nin_frames / "model.onnx"))
    logits = session.run(None, {"images": images})[0]
    expected = reference_logits(nin_frames, "best_loss", images)
    assert np.abs(expected).max() > 1e-3  # the net is alive: an all-zero export would not pass
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)
    # NiN's dropout is exported in inference mode (or not at all): its training flag is False.
    constants = {t.name: onnx.numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Dropout":
            assert len(node.input) == 3 and constants[node.input[2]] == np.False_


def test_lenet_bf16_run_exports_in_float32(lenet_bf16, tmp_path, capsys):
    out_path = tmp_path / "elsewhere" / "lenet.onnx"
    code, out, err = export([lenet_bf16, "--checkpoint", "best_acc", "--out", out_path], capsys)
    assert code == 0, err
    assert not (lenet_bf16 / "model.onnx").exists()
    model = onnx.load(out_path)
    assert graph_io(model) == (("images", onnx.TensorProto.UINT8, ["batch", 28, 28, 1]),
                               ("logits", onnx.TensorProto.FLOAT, ["batch", len(CLASSES)]))
    props = {p.key: p.value for p in model.metadata_props}
    assert (props["checkpoint"], props["trained_dtype"], props["resize"]) == (
        "best_acc", "bfloat16", "None")
    assert "the run computes in bfloat16: exported in float32" in out
    assert reported_diff(out) <= 1e-4

    images = DATASETS["digits"].test_images
    logits = ort.InferenceSession(str(out_path)).run(None, {"images": images})[0]
    expected = reference_logits(lenet_bf16, "best_acc", images)  # fp32 model, bf16-run weights
    assert np.abs(expected).max() > 1e-3
    np.testing.assert_allclose(logits, expected, rtol=0, atol=1e-4)


def test_a_checkpoint_kind_the_run_did_not_keep_is_one_line(nin_frames, capsys):
    code, _, err = export([nin_frames, "--checkpoint", "best_acc"], capsys)
    one_error_line(code, err, "keeps only latest, best_loss checkpoints")


def test_a_run_without_checkpoints_is_one_line(nin_frames, tmp_path, capsys):
    shutil.copy(nin_frames / "run.json", tmp_path / "run.json")
    code, _, err = export([tmp_path], capsys)
    one_error_line(code, err, "has no checkpoint yet")
    assert not (tmp_path / "checkpoints").exists() and not (tmp_path / "model.onnx").exists()


def test_a_folder_that_is_no_run_is_one_line(tmp_path, capsys):
    code, _, err = export([tmp_path], capsys)
    one_error_line(code, err, "run.json not found", "RUN_DIR must be a jaxnin run's workdir")


def test_a_mismatch_beyond_the_tolerance_writes_nothing(nin_frames, tmp_path, capsys):
    code, _, err = export([nin_frames, "--batch", "4", "--tolerance", "1e-30", "--out",
                           tmp_path / "model.onnx"], capsys)
    one_error_line(code, err, "differ from JAX's by", "--tolerance 1e-30", "nothing written")
    assert not list(tmp_path.iterdir())
