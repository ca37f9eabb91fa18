"""Training-loop overhead: DLSGANDetector.fit against a bare PyTorch loop, in one run.

``--images N`` times the small convolutional networks on N MNIST digits instead, ``--table ROWS
FEATURES`` a standard normal table of that shape.

Both train the same networks (built by the detector's own builder from the same seed) with the
same optimizer settings, batch size, number of steps, latent sampling and variance trace, and
the step of today's defaults (lazy R1, one critic pass on the steps without it, fused Adam
where the device has it) on Arrhythmia (452 x 274, standardized). The bare loop has no skorch,
no validation, no history and no scoring; the detector's time is its whole ``fit`` (input
validation, standardization, training, and scoring the training data for ``offset_``). Runs
alternate and the median of each is reported.

Usage::

    python benchmarks/overhead.py --repeats 5 --epochs 30
    python benchmarks/overhead.py --repeats 5 --epochs 30 --threads 1 --table 873 12
    python benchmarks/overhead.py --images 640 --epochs 1 --repeats 3
    python benchmarks/overhead.py --images 6400 --epochs 2 --device cuda --architecture reference

On CUDA both loops keep the data on the GPU and time up to a synchronisation; with
``--mixed-precision`` both run their forward passes under bfloat16 autocast (on the CPU too).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _common import data_home, machine, machine_markdown, write_json, write_markdown
from torch.nn import functional as F

from skood import DLSGANDetector
from skood._training import fused_optimizer_options
from skood.datasets import load_arrhythmia, load_mnist


def bare_loop(detector: DLSGANDetector, X: np.ndarray, seed: int) -> float:
    """The DLSGAN training step of today's defaults as a plain PyTorch loop; returns seconds.

    What the detector's step does: lazy R1 (the penalty every ``r1_interval``-th step,
    weighted by the interval), one critic pass over the real and the generated rows on the
    other steps, Adam with PyTorch's fused kernel where the device has one, the traced
    variance with the detector's decay, and the learning rate multiplied by ``lr_decay`` after
    each epoch.
    """
    device = torch.device(detector.device)
    autocast = torch.autocast(
        device.type,
        dtype=torch.bfloat16,
        enabled=bool(detector.mixed_precision),
    )
    start = time.perf_counter()
    if detector.input_shape is None:
        mean, std = X.mean(0), X.std(0)
        std[std == 0] = 1
        X = (X - mean) / std
    data = torch.as_tensor(X, dtype=torch.float32).to(device)
    networks = detector._build_networks(X.shape[1], seed)
    generator, critic = networks["module"], networks["discriminator"]
    generator, critic = generator.to(device), critic.to(device)
    if detector.input_shape is not None and device.type == "cpu":
        # The detector stores its image networks channels-last on the CPU (docs/training.md).
        generator.to(memory_format=torch.channels_last)
        critic.to(memory_format=torch.channels_last)
    adam = {"lr": detector.lr, "betas": tuple(map(float, detector.betas))}
    if fused_optimizer_options(torch.optim.Adam, device):
        adam["fused"] = True
    generator_parameters = list(generator.parameters())
    opt_g = torch.optim.Adam(generator_parameters, **adam)
    opt_d = torch.optim.Adam(critic.parameters(), **adam)
    rng = torch.Generator(device).manual_seed(seed + 1)
    order_rng = torch.Generator(device).manual_seed(seed)
    d = detector.latent_dim
    interval, decay = detector.r1_interval, detector._variance_decay()
    step = 0
    for _ in range(detector.max_epochs):
        order = torch.randperm(len(data), generator=order_rng, device=device)
        for first in range(0, len(data), detector.batch_size):
            x_real = data[order[first : first + detector.batch_size]]
            n = len(x_real)
            scale = generator.latent_scale()
            z = torch.randn(n, d, generator=rng, device=device)
            r1_step = step % interval == 0
            with autocast:
                with torch.no_grad():
                    x_fake = generator(z * scale)
                if r1_step:
                    x_real.requires_grad_(True)
                    logit_real, _, _ = critic(x_real)
                    logit_fake, z_fake, _ = critic(x_fake)
                    (grad,) = torch.autograd.grad(logit_real.sum(), x_real, create_graph=True)
                else:
                    logits, codes, _ = critic(torch.cat([x_real, x_fake]))
                    logit_real, logit_fake, z_fake = logits[:n], logits[n:], codes[n:]
            logit_real, logit_fake, z_fake = logit_real.float(), logit_fake.float(), z_fake.float()
            loss_d = (
                F.softplus(-logit_real).mean()
                + F.softplus(logit_fake).mean()
                + ((z - z_fake) * scale).pow(2).mean()
            )
            if r1_step:
                loss_d = loss_d + detector.lambda_r1 * interval * grad.float().pow(2).sum(1).mean()
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            z2 = torch.randn(n, d, generator=rng, device=device)
            with autocast:
                logit_g, z_g, _ = critic(generator(z2 * scale))
            logit_g, z_g = logit_g.float(), z_g.float()
            loss_g = F.softplus(-logit_g).mean() + ((z2 - z_g) * scale).pow(2).mean()
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward(inputs=generator_parameters)
            opt_g.step()
            generator.trace(torch.cat([z_fake, z_g]).detach(), decay)
            step += 1
        for opt in (opt_g, opt_d):
            for group in opt.param_groups:
                group["lr"] *= detector.lr_decay
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all)")
    parser.add_argument(
        "--images",
        type=int,
        default=0,
        help="time the small image networks on this many MNIST digits instead of Arrhythmia",
    )
    parser.add_argument(
        "--table",
        type=int,
        nargs=2,
        metavar=("ROWS", "FEATURES"),
        default=None,
        help="time a standard normal table of this shape instead of Arrhythmia",
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--architecture", choices=["small", "reference"], default="small")
    parser.add_argument("--mixed-precision", action="store_true")
    parser.add_argument("--output", default=None, help="results file stem")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.images:
        X, _ = load_mnist(subset="test", data_home=data_home(), return_X_y=True)
        X = X[: args.images]
        side = 28
        if args.architecture == "reference":
            # The reference network takes MNIST zero-padded (-1 after scaling) to 32 x 32.
            X = X.reshape(-1, 28, 28)
            X = np.pad(X, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0).reshape(len(X), -1)
            side = 32
        detector = DLSGANDetector(
            input_shape=(1, side, side), architecture=args.architecture, latent_dim=256,
            max_epochs=args.epochs, random_state=0, device=args.device,
            mixed_precision=args.mixed_precision,
        )  # fmt: skip
        dataset, stem = (
            f"MNIST digits ({args.images} x {side * side}, {args.architecture} conv networks)",
            "overhead_images",
        )
    else:
        if args.table:
            rows, features = args.table
            X = np.random.RandomState(0).normal(size=(rows, features)).astype(np.float32)
            dataset, stem = f"a standard normal table ({rows} x {features}, MLPs)", "overhead_table"
        else:
            X, _ = load_arrhythmia(return_X_y=True)
            dataset, stem = "Arrhythmia (452 x 274, MLPs)", "overhead"
        detector = DLSGANDetector(
            max_epochs=args.epochs, random_state=0, device=args.device,
            mixed_precision=args.mixed_precision,
        )  # fmt: skip
    stem = args.output or stem
    dataset += f", device {args.device}" + (", bfloat16 autocast" if args.mixed_precision else "")
    seed = 0
    bare_loop(detector, X, seed)  # warm-up: first-call allocations and kernel selection
    ours, bare = [], []
    for _ in range(args.repeats):
        start = time.perf_counter()
        detector.fit(X)
        ours.append(time.perf_counter() - start)
        bare.append(bare_loop(detector, X, seed))
    steps = args.epochs * int(np.ceil(len(X) / detector.batch_size))
    result = {
        "machine": machine(),
        "dataset": dataset,
        "images_per_s": {
            "skood": len(X) * args.epochs / statistics.median(ours),
            "bare": len(X) * args.epochs / statistics.median(bare),
        },
        "epochs": args.epochs,
        "steps": steps,
        "batch_size": detector.batch_size,
        "skood_fit_s": ours,
        "bare_loop_s": bare,
        "skood_fit_median_s": statistics.median(ours),
        "bare_loop_median_s": statistics.median(bare),
        "ratio": statistics.median(ours) / statistics.median(bare),
    }
    write_json(stem, result)
    text = (
        "# Training overhead: DLSGANDetector.fit vs a bare PyTorch loop\n\n"
        + machine_markdown(result["machine"])
        + f"\n{dataset}, {args.epochs} epochs, batch {detector.batch_size}, "
        f"{steps} steps, {args.repeats} alternating repeats (median).\n\n"
        "| loop | median fit (s) | per step (ms) | rows / s |\n|---|---|---|---|\n"
        f"| skood DLSGANDetector.fit | {result['skood_fit_median_s']:.2f} | "
        f"{1000 * result['skood_fit_median_s'] / steps:.2f} | "
        f"{result['images_per_s']['skood']:.1f} |\n"
        f"| bare PyTorch loop | {result['bare_loop_median_s']:.2f} | "
        f"{1000 * result['bare_loop_median_s'] / steps:.2f} | "
        f"{result['images_per_s']['bare']:.1f} |\n\n"
        f"Ratio skood / bare: **{result['ratio']:.3f}** (target at most 1.15).\n"
    )
    write_markdown(stem, text)
    print(text)


if __name__ == "__main__":
    main()
