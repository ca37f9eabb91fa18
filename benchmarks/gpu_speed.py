"""DLSGAN image training on a GPU: images per second and host synchronisations per step.

DLSGAN's small convolutional networks on MNIST digits, at batch 32 and 256, with the paper's
step (float32, R1 on every step) and with today's defaults (``mixed_precision="auto"``, which is
bfloat16 on CUDA, and the default ``r1_interval``). Each ``fit`` trains one epoch on data moved
to the device once; the time is the whole ``fit``, which ends in scoring the training data
(``offset_``), so it ends synchronised.

Host synchronisations are counted with ``torch.cuda.set_sync_debug_mode("warn")``, which
warns at every synchronising CUDA call: the count of a two-epoch fit minus that of a one-epoch
fit is what one more epoch costs (its steps plus the epoch's one transfer of deferred losses),
so syncs per step are that difference over the steps of an epoch.

Usage::

    python benchmarks/gpu_speed.py --device cuda
    python benchmarks/gpu_speed.py --device cpu --n-images 256   # a smoke run, no sync count
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from _common import data_home, machine, machine_markdown, write_json, write_markdown

from skood import DLSGANDetector
from skood.datasets import load_mnist

SETTINGS = {
    "paper step (float32, R1 every step)": {"mixed_precision": False, "r1_interval": 1},
    "defaults": {},
}


def _fit(X: np.ndarray, device: str, batch_size: int, epochs: int, settings: dict):
    detector = DLSGANDetector(
        input_shape=(1, 28, 28),
        batch_size=batch_size,
        max_epochs=epochs,
        device=device,
        random_state=0,
        **settings,
    )
    start = time.perf_counter()
    detector.fit(X)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return detector, time.perf_counter() - start


def _synchronisations(X: np.ndarray, device: str, batch_size: int, settings: dict) -> int:
    """Synchronising CUDA calls that one more epoch of training adds."""
    counts = []
    for epochs in (1, 2):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                _fit(X, device, batch_size, epochs, settings)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts.append(sum("synchroniz" in str(warning.message) for warning in caught))
    return counts[1] - counts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--n-images", type=int, default=25600)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 256])
    parser.add_argument("--output", default="gpu_speed")
    args = parser.parse_args()
    digits, _ = load_mnist(data_home=data_home(), return_X_y=True)
    X = digits[: args.n_images]
    rows = {}
    for name, settings in SETTINGS.items():
        for batch_size in args.batch_sizes:
            _fit(X[:640], args.device, batch_size, 1, settings)  # warm up kernels and caches
            detector, seconds = _fit(X, args.device, batch_size, 1, settings)
            steps = -(-len(X) // batch_size)
            row = {
                "images_per_s": len(X) / seconds,
                "ms_per_step": 1e3 * seconds / steps,
                "mixed_precision": bool(detector.net_.mixed_precision),
                "r1_interval": detector.r1_interval,
            }
            if args.device.startswith("cuda"):
                extra = _synchronisations(X[:6400], args.device, batch_size, settings)
                row["syncs_per_epoch"] = extra
                row["syncs_per_step"] = extra / -(-6400 // batch_size)
            rows[f"{name}, batch {batch_size}"] = row
            print(name, batch_size, row, flush=True)
    payload = {"machine": machine(), "n_images": len(X), "runs": rows}
    lines = [
        "# DLSGAN image training on a GPU",
        "",
        machine_markdown(payload["machine"]),
        "",
        f"{len(X)} MNIST digits, one epoch per `fit`, small networks (28 x 28). Syncs: "
        "synchronising CUDA calls one more epoch adds (6,400 digits), per epoch and per step.",
        "",
        "| step | images / s | ms / step | bfloat16 | syncs per epoch | syncs per step |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        syncs = row.get("syncs_per_epoch", "n/a")
        per_step = f"{row['syncs_per_step']:.3f}" if "syncs_per_step" in row else "n/a"
        lines.append(
            f"| {name} | {row['images_per_s']:.0f} | {row['ms_per_step']:.2f} | "
            f"{row['mixed_precision']} | {syncs} | {per_step} |"
        )
    write_json(args.output, payload)
    write_markdown(args.output, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
