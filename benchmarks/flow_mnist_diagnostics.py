"""Diagnostics of the approximate mass on Fashion-MNIST -> MNIST: what the score measures.

Trains one :class:`~skood.flow.ApproximateMassFlowDetector` image flow on Fashion-MNIST training
images (the small CPU flow of ``flow_ood.py``) and scores 1,000 Fashion-MNIST test images
against 1,000 MNIST test images (the same images as ``flow_ood.py`` with seed 0), per sample:

* ``mass midpoint``: the detector's score (midpoint dequantisation);
* ``mass noise 1`` and ``mass noise 4``: the gradient norm with fresh uniform dequantisation
  noise for every image, one draw, or the mean over four (the authors' evaluation drew fresh
  noise on every pass);
* ``mass logit space``: the norm of the gradient of the flow's own log-density with respect to
  the logits it receives, leaving out the fixed dequantise/logit preprocessing and its
  log-determinant;
* ``LL``: the log-likelihood.

Every number is measured on the test images: these runs explain the benchmark's miss, they
choose nothing. Each run appends one record to ``results/flow_mnist_diagnostics.json`` and
rewrites the table in ``results/flow_mnist_diagnostics.md``.

Usage::

    python benchmarks/flow_mnist_diagnostics.py --alpha 0                 # vanilla
    python benchmarks/flow_mnist_diagnostics.py                           # penalised, alpha 2
    python benchmarks/flow_mnist_diagnostics.py --penalty per_sample --alpha 0.3
    python benchmarks/flow_mnist_diagnostics.py --train-size 12000 --epochs 4 --seed 1
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import RESULTS, RunProgress, data_home, machine, machine_markdown, write_markdown
from torch import nn

from skood import ApproximateMassFlowDetector
from skood.datasets import load_fashion_mnist, load_mnist
from skood.flow import log_prob_and_gradient_norm
from skood.metrics import roc_auc

SCORES = ("mass midpoint", "mass noise 1", "mass noise 4", "mass logit space", "LL")


class _LogitsUnchanged(nn.Module):
    """Stands in for the preprocessing: passes logits through with a zero log-determinant."""

    def forward(self, logits, noise=None):
        return logits, logits.new_zeros(logits.shape[0])


def images(train_size: int, eval_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Training rows, ID test rows and MNIST rows in [-1, 1], chosen as ``flow_ood.py`` does."""
    home = data_home()
    rng = np.random.RandomState(0)
    train = load_fashion_mnist(subset="train", data_home=home, scale=None).images
    train = train[np.sort(rng.choice(len(train), train_size, replace=False))]
    fashion = load_fashion_mnist(subset="test", data_home=home, scale=None).images
    mnist = load_mnist(subset="test", data_home=home, scale=None).images
    chosen = np.sort(rng.choice(len(fashion), eval_size, replace=False))

    def scaled(pixels):
        return (pixels.reshape(len(pixels), -1).astype(np.float32) / 127.5 - 1.0).astype(np.float32)

    return scaled(train), scaled(fashion[chosen]), scaled(mnist[chosen])


def aurocs(detector, X_id: np.ndarray, X_ood: np.ndarray) -> dict[str, float]:
    """AUROC of every score of :data:`SCORES` (higher = more normal), ID positive.

    Noise is drawn from one seeded stream, score by score, ID images first.
    """
    flow = detector.net_.module_.eval()
    generator = torch.Generator().manual_seed(1)

    def mass(X: np.ndarray, noisy: bool) -> np.ndarray:
        def log_prob(x):
            noise = torch.rand(x.shape, generator=generator) if noisy else None
            return flow.log_prob(x, noise=noise)

        _, norms = log_prob_and_gradient_norm(log_prob, torch.as_tensor((X + 1.0) / 2.0))
        return -norms.detach().numpy()

    def logit_space_mass(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            logits, _ = flow.preprocess(flow._as_images(torch.as_tensor((X + 1.0) / 2.0)))
        preprocess = flow.preprocess
        flow.preprocess = _LogitsUnchanged()
        try:
            _, norms = log_prob_and_gradient_norm(flow.log_prob, logits.flatten(1))
        finally:
            flow.preprocess = preprocess
        return -norms.detach().numpy()

    def log_likelihood(X: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return flow.log_prob(torch.as_tensor((X + 1.0) / 2.0)).numpy()

    score_functions = {
        "mass midpoint": lambda X: mass(X, noisy=False),
        "mass noise 1": lambda X: mass(X, noisy=True),
        "mass noise 4": lambda X: np.mean([mass(X, noisy=True) for _ in range(4)], axis=0),
        "mass logit space": logit_space_mass,
        "LL": log_likelihood,
    }
    y = np.r_[np.ones(len(X_id)), -np.ones(len(X_ood))]
    result = {}
    for name in SCORES:
        id_scores = score_functions[name](X_id)
        result[name] = roc_auc(y, np.r_[id_scores, score_functions[name](X_ood)])
    return result


def markdown(records: list[dict]) -> str:
    lines = ["# Approximate mass on Fashion-MNIST -> MNIST: diagnostics", ""]
    lines += [machine_markdown(records[-1]["machine"]), ""]
    lines += [
        "Per-sample AUROC, 1,000 Fashion-MNIST test images (in-distribution) against 1,000 "
        "MNIST test images; the small CPU flow of `flow_ood.py` (2 scales, 1 residual block, "
        "16 channels, batch 64). Measured on test images to explain the benchmark's miss; "
        "nothing here chose a setting.",
        "",
        "| images | epochs | alpha | penalty | lr | seed | " + " | ".join(SCORES) + " | fit (s) |",
        "|---" * (7 + len(SCORES)) + "|",
    ]
    for record in records:
        a = record["args"]
        cells = " | ".join(f"{record['auroc'][name]:.3f}" for name in SCORES)
        lines.append(
            f"| {a['train_size']} | {a['epochs']} | {a['alpha']:g} | {a['penalty']} | "
            f"{a['lr']:g} | {a['seed']} | {cells} | {record['fit_seconds']:.0f} |"
        )
    lines += ["", "Commands, row by row:", ""]
    lines += [f"* `{record['machine']['command']}`" for record in records]
    notes = sorted({record["machine"].get("note") for record in records} - {None})
    lines += ["", *(f"Note: {note}." for note in notes), ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--alpha", type=float, default=2.0)
    parser.add_argument("--penalty", default="batch_mean", choices=["batch_mean", "per_sample"])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--eval-size", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--verbose", type=int, default=0, help="2: progress by batch")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    X_train, X_id, X_ood = images(args.train_size, args.eval_size)
    detector = ApproximateMassFlowDetector(
        alpha=args.alpha,
        penalty=args.penalty,
        input_shape=(1, 28, 28),
        n_scales=2,
        n_blocks=1,
        mid_channels=16,
        lr=args.lr,
        batch_size=64,
        max_epochs=args.epochs,
        inference_batch_size=500,
        random_state=args.seed,
        verbose=args.verbose,
    )
    with RunProgress(1).run(f"Flow (alpha {args.alpha:g})", "Fashion-MNIST", args.seed):
        start = time.perf_counter()
        detector.fit(X_train)
        fit_seconds = time.perf_counter() - start
        auroc = aurocs(detector, X_id, X_ood)
    record = {
        "machine": machine(),
        "args": vars(args),
        "fit_seconds": fit_seconds,
        "auroc": auroc,
        "training_gradient_norm": [float(v) for v in detector.history_[:, "gradient_norm"]]
        if args.alpha > 0
        else None,
    }
    path = RESULTS / "flow_mnist_diagnostics.json"
    records = json.loads(path.read_text()) if path.exists() else []
    records.append(record)
    path.write_text(json.dumps(records, indent=2) + "\n")
    text = markdown(records)
    write_markdown("flow_mnist_diagnostics", text)
    print(text)


if __name__ == "__main__":
    main()
