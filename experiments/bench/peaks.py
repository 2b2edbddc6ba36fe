"""Dense bf16 peaks by device kind, the denominator of model FLOP utilisation (MFU).

Vendor datasheet figures, dense (NVIDIA's datasheets print bf16 "with sparsity", twice the
dense rate; the numbers below are halved). Where a device is not listed (a CPU, an unknown
card) the peak is None and so is the MFU: a guess would make every MFU meaningless.
"""

# (lower-case substring of jax's device_kind, dense bf16 TFLOP/s, source). First match wins,
# so a name that contains another ("h100 pcie" and "h100", "l40s" and "l4") comes first.
BF16_PEAKS = (
    ("h100 pcie", 756.5, "NVIDIA H100 datasheet: PCIe bf16 1,513 TFLOPS with sparsity"),
    ("h100 nvl", 835.5, "NVIDIA H100 datasheet: NVL bf16 1,671 TFLOPS with sparsity"),
    ("h200 nvl", 835.5, "NVIDIA H200 datasheet: NVL bf16 1,671 TFLOPS with sparsity"),
    ("gh200", 989.5, "NVIDIA GH200 datasheet: bf16 1,979 TFLOPS with sparsity"),
    ("h200", 989.5, "NVIDIA H200 datasheet: SXM bf16 1,979 TFLOPS with sparsity"),
    ("h100", 989.5, "NVIDIA H100 datasheet: SXM bf16 1,979 TFLOPS with sparsity"),
    ("a100", 312.0, "NVIDIA A100 datasheet: bf16 312 TFLOPS dense (624 with sparsity)"),
    ("l40s", 362.05, "NVIDIA L40S datasheet: bf16 362.05 TFLOPS dense (733 with sparsity)"),
    ("l40", 181.05, "NVIDIA L40 datasheet: bf16 181.05 TFLOPS dense (362.1 with sparsity)"),
    ("l4", 121.0, "NVIDIA L4 datasheet: bf16 242 TFLOPS with sparsity"),
    ("a10", 125.0, "NVIDIA A10 datasheet: bf16 125 TFLOPS dense (250 with sparsity)"),
    ("tpu v4", 275.0, "Google Cloud TPU v4 documentation: 275 bf16 TFLOPS per chip"),
    ("tpu v5 lite", 197.0, "Google Cloud TPU v5e documentation: 197 bf16 TFLOPS per chip"),
    ("tpu v5", 459.0, "Google Cloud TPU v5p documentation: 459 bf16 TFLOPS per chip"),
    ("tpu v6 lite", 918.0, "Google Cloud TPU v6e documentation: 918 bf16 TFLOPS per chip"),
)


def bf16_peak(device_kind: str) -> tuple[float | None, str]:
    """(dense bf16 peak in FLOP/s, where the figure comes from) for a jax `device_kind`."""
    kind = device_kind.lower()
    for name, tflops, source in BF16_PEAKS:
        if name in kind:
            return tflops * 1e12, source
    return None, f"no bf16 peak known for {device_kind!r}: MFU is left empty"


def mfu(examples_per_s: float, train_flops_per_example: float, peak_flops: float | None):
    """Achieved training FLOP/s over the peak; None where the peak is unknown."""
    if not peak_flops:
        return None
    return examples_per_s * train_flops_per_example / peak_flops
