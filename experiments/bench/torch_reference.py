"""PyTorch references for the bench: the seeds' nets, and three ways a user trains them.

  * "seed_pipeline": as the seeds run: a Dataset that PIL-resizes each 28x28 image on the CPU,
    a DataLoader with 4 workers, fp32 eager, and d2l's per-step host sync for the metrics.
  * "fp32": the data on the device as uint8, F.interpolate there, fp32 eager, no host sync.
  * "tuned": as "fp32", plus torch.compile, bf16 autocast, channels_last, cudnn.benchmark and
    the fused optimizer: the best PyTorch a user would write for these nets.
  * "cpu": the plain eager loop a student writes on a laptop: the data in memory as a float
    tensor, a random permutation per epoch, no DataLoader, F.interpolate for the resize,
    torch.optim's SGD (the recipe's lr and momentum), no compile, a .item() per step; always
    on the CPU.

Every job carries its precision policy (experiments.bench.policy.row_policy), applied in `build`;
each result reports the settings read back from torch (`settings`).

Weights are xavier-uniform as the seeds set them; biases are zero, as jaxnin's are, so that the
two sides train the same function (`zero_bias=False` keeps PyTorch's default biases, as the
seeds' runs did). This module imports torch at the top: callers catch the ImportError. It
imports nothing of JAX, flax or optax (tests/test_bench.py checks), so PyTorch's cold start
pays for PyTorch only.
"""
import functools
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from experiments.bench.policy import loaded, speed_env, torch_refusal
from jaxnin import files
from jaxnin.data.vision import load_dataset  # NumPy only: the same arrays jaxnin trains on
from jaxnin.vgg_cfgs import CONFIGS as VGG_CONFIGS  # seed 004's, shared with the Flax VGG

VARIANTS = ("seed_pipeline", "fp32", "tuned", "cpu")
IMAGE_SIZE = 28


# ---------------------------------------------------------------------------
# The seeds' nets.

def nin(num_classes: int = 10, in_channels: int = 1, num_1x1: int = 2) -> nn.Module:
    """Seed 001's d2l NiN."""
    def block(cin, cout, kernel, stride, padding):
        layers = [nn.Conv2d(cin, cout, kernel, stride, padding), nn.ReLU()]
        for _ in range(num_1x1):
            layers += [nn.Conv2d(cout, cout, 1), nn.ReLU()]
        return nn.Sequential(*layers)

    return nn.Sequential(
        block(in_channels, 96, 11, 4, 0), nn.MaxPool2d(3, 2),
        block(96, 256, 5, 1, 2), nn.MaxPool2d(3, 2),
        block(256, 384, 3, 1, 1), nn.MaxPool2d(3, 2),
        nn.Dropout(0.5),
        block(384, num_classes, 3, 1, 1),
        nn.AdaptiveAvgPool2d((1, 1)), nn.Flatten())


def vgg(num_classes: int = 10, in_channels: int = 1, config: str = "A", width_divisor: int = 1,
        dropout: float = 0.0, hidden: int = 4096, image_size: int = 224) -> nn.Module:
    """Seed 004's VGG; its head flattens whatever the features leave (512x7x7 at 224)."""
    layers, channels = [], in_channels
    for item in VGG_CONFIGS[config]:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(channels, item // width_divisor, 3, padding=1), nn.ReLU()]
            channels = item // width_divisor
    side = image_size // 2 ** VGG_CONFIGS[config].count("M")
    head = [nn.Flatten(), nn.Linear(channels * side * side, hidden), nn.ReLU()]
    head += [nn.Dropout(dropout)] if dropout else []
    head += [nn.Linear(hidden, hidden), nn.ReLU()]
    head += [nn.Dropout(dropout)] if dropout else []
    return nn.Sequential(*layers, *head, nn.Linear(hidden, num_classes))


class LeNet5(nn.Module):
    """Seed 002's LeNet-5: sigmoid after conv1 and conv2 only (by default)."""

    def __init__(self, num_classes: int = 10, activation: str = "sigmoid",
                 dense_activations: bool = False):
        super().__init__()
        self.act = {"sigmoid": nn.Sigmoid(), "relu": nn.ReLU()}[activation]
        self.late_act = self.act if dense_activations else nn.Identity()
        self.conv1 = nn.Conv2d(1, 6, 5, padding=2)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.conv3 = nn.Conv2d(16, 120, 5)
        self.fc1 = nn.Linear(120, 84)
        self.output = nn.Linear(84, num_classes)

    def forward(self, x):
        x = F.avg_pool2d(self.act(self.conv1(x)), 2, 2)
        x = F.avg_pool2d(self.act(self.conv2(x)), 2, 2)
        x = self.late_act(self.conv3(x)).flatten(1)
        return self.output(self.late_act(self.fc1(x)))


def create_model(name: str, image_size: int, zero_bias: bool = True, **options) -> nn.Module:
    """jaxnin's model names and options, as PyTorch modules with the seeds' xavier weights."""
    if name == "nin":
        model = nin(**options)
    elif name.startswith("vgg"):
        config = {"vgg11": "A", "vgg13": "B", "vgg16": "D", "vgg19": "E"}[name]
        model = vgg(config=config, image_size=image_size, **options)
    elif name == "lenet":
        model = LeNet5(**options)
    else:
        raise ValueError(f"no PyTorch reference for model {name!r}")

    def init(module):
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if zero_bias:
                nn.init.zeros_(module.bias)

    return model.apply(init)


def make_optimizer(name: str, params, lr: float, momentum: float, fused: bool):
    """torch.optim's SGD, SGD with momentum, or Adam; `fused` kernels where the device has them."""
    if name == "sgd":
        make = functools.partial(torch.optim.SGD, lr=lr)
    elif name == "momentum":
        make = functools.partial(torch.optim.SGD, lr=lr, momentum=momentum)
    elif name == "adam":
        make = functools.partial(torch.optim.Adam, lr=lr, betas=(0.9, 0.999), eps=1e-8)
    else:
        raise ValueError(f"unknown optimizer {name!r}")
    params = list(params)
    if fused:
        try:
            return make(params, fused=True)
        except (TypeError, RuntimeError):  # a torch without this fused kernel: its default
            pass
    return make(params)


# ---------------------------------------------------------------------------
# Input pipelines.

class PILResizeDataset(torch.utils.data.Dataset):
    """The seeds' pipeline: uint8 HxWx1 arrays, PIL bilinear resize, then ToTensor's [0, 1]."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, size: int | None):
        self.images, self.labels, self.size = images, labels, size

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, index):
        from PIL import Image

        image = Image.fromarray(self.images[index][:, :, 0])
        if self.size and self.size != image.size[0]:
            image = image.resize((self.size, self.size), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) / 255.0
        return torch.from_numpy(pixels)[None], int(self.labels[index])


def device_batch(images: torch.Tensor, index: torch.Tensor, size: int | None,
                 channels_last: bool) -> torch.Tensor:
    """Gather uint8 N1HW images on the device, scale to [0, 1] and resize bilinearly there."""
    x = images[index].float().div_(255.0)
    if size and size != x.shape[-1]:
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


class Trainer:
    """One model, optimizer and precision; `step` trains on a batch, returning device sums."""

    def __init__(self, model, optimizer, device, bf16: bool, compile_model: bool,
                 compile_mode: str, clip_norm: float | None = None):
        self.model, self.optimizer, self.device = model, optimizer, device
        self.clip_norm = clip_norm
        self.bf16 = bf16
        self.forward = torch.compile(model, mode=compile_mode) if compile_model else model

    def logits(self, x):
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.forward(x).float()

    def step(self, x, y):
        logits = self.logits(x)
        loss = F.cross_entropy(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip_norm:  # jaxnin's clip_norm: optax.clip_by_global_norm
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_norm)
        self.optimizer.step()
        return loss.detach() * y.shape[0], (logits.argmax(1) == y).sum()


def build(job: dict, device) -> Trainer:
    """The Trainer that `job["variant"]` describes, on `device`, under `job["policy"]`, for
    the run config `job["config"]` (a TrainConfig's to_json(), read as a plain dict)."""
    variant, config = job["variant"], job["config"]
    if variant not in VARIANTS:
        raise ValueError(f"unknown variant {variant!r}: choose one of {VARIANTS}")
    refused = torch_refusal(config)
    if refused:
        raise ValueError(refused)
    apply_policy(job["policy"], benchmark=variant == "tuned")
    tuned = variant == "tuned"
    size = config["resize"] or IMAGE_SIZE
    torch.manual_seed(config["seed"])
    model = create_model(config["model"], size, job.get("zero_bias", True),
                         **config["model_options"])
    model = model.to(device)
    if tuned:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config["optimizer"], model.parameters(), config["lr"],
                               config["momentum"], fused=tuned and device.type == "cuda")
    bf16 = tuned and job.get("bf16", True)
    return Trainer(model.train(), optimizer, device, bf16, tuned and job["compile"],
                   job.get("compile_mode", "default"), config["clip_norm"])


def apply_policy(policy: dict, benchmark: bool) -> None:
    """Set the TF32 switches the row's policy names (all of them, so no default decides)."""
    torch.backends.cuda.matmul.allow_tf32 = policy["matmul_allow_tf32"]
    torch.backends.cudnn.allow_tf32 = policy["cudnn_allow_tf32"]
    torch.backends.cudnn.benchmark = benchmark


def settings() -> dict:
    """What decides this process's speed, read back from torch itself."""
    return {"versions": versions(), "num_threads": torch.get_num_threads(),
            "num_interop_threads": torch.get_num_interop_threads(),
            "matmul_allow_tf32": torch.backends.cuda.matmul.allow_tf32,
            "cudnn_allow_tf32": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark,
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "jax_family_loaded": loaded(), **speed_env()}


def pick_device(variant: str = "fp32") -> torch.device:
    if variant == "cpu":
        return torch.device("cpu")
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def synchronize(device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ---------------------------------------------------------------------------
# Throughput.

def measure_throughput(job: dict) -> dict:
    """Training examples/sec for one (model, batch, variant) job on random data of the real shape.

    job keys: config (the run config: model, model_options, batch_size, resize, optimizer, lr,
    momentum, clip_norm, seed; its dtype is the variant's here), variant, steps, repeats,
    warmup_steps (untimed steps first), compile, compile_mode, num_workers.
    """
    device = pick_device(job["variant"])
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    trainer = build(job, device)
    job = {**job, "batch_size": job["config"]["batch_size"], "resize": job["config"]["resize"]}
    images, labels = random_data(job["steps"] * job["batch_size"])
    run = {"seed_pipeline": _seed_pipeline_epoch, "cpu": _student_epoch}.get(job["variant"],
                                                                             _device_epoch)
    feed = _feed(job, images, labels, device)

    start = time.perf_counter()
    run(trainer, feed, job, steps=job["warmup_steps"])  # compile, autotune, first allocations
    synchronize(device)
    warmup_s = time.perf_counter() - start
    epoch_times, sums = [], None
    for _ in range(job["repeats"]):
        start = time.perf_counter()
        sums = run(trainer, feed, job, steps=job["steps"])
        synchronize(device)
        epoch_times.append(time.perf_counter() - start)
    examples = job["steps"] * job["batch_size"]
    return {"status": "ok", "examples_per_s": examples / statistics.median(epoch_times),
            "epoch_times_s": epoch_times, "examples_per_epoch": examples,
            "counted_examples": int(sums[2]), "warmup_s": warmup_s,
            "final_train_loss": float(sums[0]) / sums[2],
            "compiled": job["variant"] == "tuned" and job["compile"],
            **_peak_memory(device), "device_kind": device_name(device),
            "versions": versions(), "settings": settings()}


def random_data(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint8 NHWC images of the real shape and labels 0..9 (as jaxnin's side uses)."""
    rng = np.random.default_rng(seed)
    images = rng.integers(0, 256, (count, IMAGE_SIZE, IMAGE_SIZE, 1), dtype=np.uint8)
    return images, rng.integers(0, 10, count, dtype=np.int32)


def _feed(job, images, labels, device):
    if job["variant"] == "seed_pipeline":
        return PILResizeDataset(images, labels, job["resize"])
    if job["variant"] == "cpu":  # as a student loads it: float in [0, 1], N1HW, once
        return (torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255.0,
                torch.from_numpy(labels).long())
    return (torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(device),
            torch.from_numpy(labels).long().to(device))


def _seed_pipeline_epoch(trainer, dataset, job, steps):
    """d2l's train_ch6 loop: a fresh DataLoader pass (workers start each epoch), host sync per step."""
    loader = torch.utils.data.DataLoader(
        torch.utils.data.Subset(dataset, range(steps * job["batch_size"])),
        batch_size=job["batch_size"], shuffle=True, num_workers=job["num_workers"])
    loss_sum = correct = count = 0.0
    for x, y in loader:
        x, y = x.to(trainer.device), y.to(trainer.device)
        step_loss, step_correct = trainer.step(x, y)
        loss_sum += float(step_loss)  # d2l's Accumulator: a host sync every step
        correct += float(step_correct)
        count += y.shape[0]
    return loss_sum, correct, count


def _device_epoch(trainer, data, job, steps):
    """Shuffle on the device, then `steps` batches; the sums stay on the device until the end."""
    images, labels = data
    batch_size = job["batch_size"]
    channels_last = job["variant"] == "tuned"
    order = torch.randperm(labels.shape[0], device=trainer.device)
    loss_sum = torch.zeros((), device=trainer.device)
    correct = torch.zeros((), device=trainer.device, dtype=torch.long)
    for step in range(steps):
        start = (step * batch_size) % (labels.shape[0] - labels.shape[0] % batch_size)
        index = order[start:start + batch_size]
        step_loss, step_correct = trainer.step(
            device_batch(images, index, job["resize"], channels_last), labels[index])
        loss_sum += step_loss
        correct += step_correct
    return float(loss_sum), float(correct), steps * batch_size


def _student_epoch(trainer, data, job, steps):
    """The loop a student writes: randperm, slice, F.interpolate, step, .item() the metrics."""
    images, labels = data
    batch_size, size = job["batch_size"], job["resize"]
    order = torch.randperm(labels.shape[0])
    loss_sum = correct = 0.0
    for step in range(steps):
        index = order[step * batch_size:(step + 1) * batch_size]
        x = images[index]
        if size and size != x.shape[-1]:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        step_loss, step_correct = trainer.step(x, labels[index])
        loss_sum += step_loss.item()
        correct += step_correct.item()
    return loss_sum, correct, steps * batch_size


def _peak_memory(device) -> dict:
    if device.type != "cuda":
        return {"peak_memory_bytes": None,
                "peak_memory_source": f"not measured on {device.type} (PyTorch tracks CUDA only)"}
    return {"peak_memory_bytes": int(torch.cuda.max_memory_allocated(device)),
            "peak_memory_source": "torch.cuda.max_memory_allocated() (tensors; the caching "
                                  "allocator's reserve is "
                                  f"{torch.cuda.max_memory_reserved(device):,} bytes)"}


def device_name(device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


def versions() -> dict:
    return {"torch": torch.__version__, "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available()
            else None}


# ---------------------------------------------------------------------------
# Time to accuracy: a recipe trained from a cold start, one history.json record per epoch.

def train_recipe(job: dict) -> dict:
    """Train job's recipe on the real data, writing `workdir/history.json` after every epoch.

    job keys: config (the run config, a TrainConfig's to_json(): dataset, data_dir, model,
    model_options, epochs, batch_size, eval_batch_size, optimizer, lr, momentum, schedule
    (constant|step|cosine), step_size, gamma, clip_norm, resize, dtype (float32|bfloat16),
    limit_train, limit_test, seed; policy.torch_refusal names what it refuses), compile,
    compile_mode, workdir.
    The data on the device, channels_last and the compiled model are the "tuned" variant's;
    the last short batch is dropped, as jaxnin drops it.
    """
    device = pick_device()
    workdir = Path(job["workdir"])
    job = {**job, **job["config"]}  # the run's fields, read as the helpers below take them
    data = load_dataset(job["dataset"], job["data_dir"])
    train = _to_device(data.train_images, data.train_labels, job["limit_train"], device)
    test = _to_device(data.test_images, data.test_labels, job["limit_test"], device)
    trainer = build({**job, "variant": "tuned", "bf16": job["dtype"] == "bfloat16"}, device)
    steps = train[1].shape[0] // job["batch_size"]
    scheduler = _scheduler(job, trainer.optimizer, steps)
    history = []
    for epoch in range(1, job["epochs"] + 1):
        start = time.perf_counter()
        lr = trainer.optimizer.param_groups[0]["lr"]
        loss_sum, correct, count = _recipe_epoch(trainer, train, job, steps, scheduler)
        test_loss, test_acc = _evaluate(trainer, test, job)
        if job["schedule"] == "step":
            scheduler.step()
        history.append({"epoch": epoch, "train_loss": loss_sum / count,
                        "train_acc": correct / count, "test_loss": test_loss,
                        "test_acc": test_acc, "lr": lr,
                        "epoch_time_s": time.perf_counter() - start})
        _write_json(workdir / "history.json", history)
    return {"status": "ok", "epochs": len(history), "device_kind": device_name(device),
            "settings": settings()}


def _to_device(images, labels, limit, device):
    images, labels = images[:limit], labels[:limit]
    return (torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).contiguous()
            .to(device), torch.from_numpy(labels).long().to(device))


def _scheduler(job, optimizer, steps_per_epoch):
    if job["schedule"] == "step":  # StepLR, stepped once per epoch as the seed does
        return torch.optim.lr_scheduler.StepLR(optimizer, job["step_size"], job["gamma"])
    if job["schedule"] == "cosine":  # per step, to 0 over the whole run (jaxnin's cosine)
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer,
                                                          job["epochs"] * steps_per_epoch)
    return None


def _recipe_epoch(trainer, train, job, steps, scheduler):
    images, labels = train
    batch_size = job["batch_size"]
    order = torch.randperm(labels.shape[0], device=trainer.device)
    loss_sum = torch.zeros((), device=trainer.device)
    correct = torch.zeros((), device=trainer.device, dtype=torch.long)
    for step in range(steps):
        index = order[step * batch_size:(step + 1) * batch_size]
        step_loss, step_correct = trainer.step(device_batch(images, index, job["resize"], True),
                                               labels[index])
        loss_sum += step_loss
        correct += step_correct
        if job["schedule"] == "cosine":
            scheduler.step()
    return float(loss_sum), float(correct), steps * batch_size


def _evaluate(trainer, test, job):
    """Test loss and accuracy over every test example, in eval mode (no dropout)."""
    images, labels = test
    trainer.model.eval()
    loss_sum, correct = 0.0, 0.0
    with torch.no_grad():
        for start in range(0, labels.shape[0], job["eval_batch_size"]):
            index = torch.arange(start, min(start + job["eval_batch_size"], labels.shape[0]),
                                 device=trainer.device)
            logits = trainer.logits(device_batch(images, index, job["resize"], True))
            loss_sum += float(F.cross_entropy(logits, labels[index], reduction="sum"))
            correct += float((logits.argmax(1) == labels[index]).sum())
    trainer.model.train()
    return loss_sum / labels.shape[0], correct / labels.shape[0]


def _write_json(path: Path, payload) -> None:
    # Atomic, so the bench polling this file never reads half of it.
    files.write_text(path, json.dumps(payload, indent=2) + "\n")
