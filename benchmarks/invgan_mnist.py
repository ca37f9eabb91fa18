"""InvGAN on MNIST one-class-out (GANomaly's protocol), AUROC per held-out digit.

Protocol (method reference: invgan.md section 4.2; published numbers in results.md section 3.3):
for each held-out digit, InvGANDetector is trained on the training images of the nine other
digits; the test images of all ten digits are scored, and the AUROC with the held-out digit as
the anomaly is reported. The paper reports only the mean and standard deviation over the ten
digits (0.792 +- 0.079; per-digit values exist only as bars in its Figure 4), printed beside ours.

Images are zero-padded from 28 x 28 to 32 x 32 (the Appendix A networks halve the sides three
times) and scaled to [-1, 1] (the generator ends in tanh), with ``input_shape=(1, 32, 32)``,
latent 50, batch 64.

Configurations (``--config``):

* ``cpu``: ``--train-size`` 2,000 training images (of the nine digits), ``--epochs`` 5,
  ``--eval-size`` 500 test images (a fixed random subset of the ten digits). Ten digits take
  about 35 minutes with ``--n-jobs 2 --threads 1`` on two cores. Scoring is a large share: the
  likelihood needs the 1024 x 50 Jacobian of the convolutional generator per image (50
  forward-mode passes), and ``fit`` scores the training images once for ``offset_``.
* ``gpu``: all training images of the nine digits, 15 epochs (the paper's 15-25), all 10,000 test
  images.

Usage::

    python benchmarks/invgan_mnist.py --config cpu
    python benchmarks/invgan_mnist.py --config cpu --digits 0 1 2
    python benchmarks/invgan_mnist.py --config cpu --n-jobs 2 --threads 1
    python benchmarks/invgan_mnist.py --config gpu --device cuda
    python benchmarks/invgan_mnist.py --config cpu --digits 0 1 8 \
        --invgan-params '{"kmeans_on": "encoded"}' --output invgan_mnist_cpu_encoded

Besides the AUROC of the log-likelihood (and with the residual term), every row splits the
log-likelihood ``log p(z) - 1/2 log det M(z)`` at ``z = h(x)`` into its two terms and gives the
AUROC of each alone: the prior term ``log N(h(x); 0, I)`` and the volume term
``-1/2 log det M``, which tells which of them ranks the held-out digit wrongly.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from _common import (
    RunProgress,
    data_home,
    machine,
    machine_markdown,
    parallel_runs,
    write_results,
)
from joblib import delayed

from skood import InvGANDetector
from skood.datasets import load_mnist
from skood.metrics import roc_auc
from skood.nn.gaussian import standard_normal_log_prob

PAPER_MEAN, PAPER_STD = 0.792, 0.0786
CONFIGS = {
    "cpu": {"train_size": 2000, "epochs": 5, "eval_size": 500},
    "gpu": {"train_size": None, "epochs": 15, "eval_size": None},
}


def _padded(images: np.ndarray) -> np.ndarray:
    """(n, 784) in [-1, 1] -> (n, 1024): a 2-pixel border of background (-1) on every side."""
    square = images.reshape(-1, 28, 28)
    return np.pad(square, ((0, 0), (2, 2), (2, 2)), constant_values=-1.0).reshape(-1, 1024)


def run_digit(digit: int, args, X_train, y_train, X_eval, y_eval) -> dict:
    if args.threads:
        # joblib workers start with torch's default thread count.
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed + digit)
    normal = np.flatnonzero(y_train != digit)
    if args.train_size is not None and args.train_size < len(normal):
        normal = np.sort(rng.choice(normal, args.train_size, replace=False))
    detector = InvGANDetector(
        input_shape=(1, 32, 32),
        batch_size=64,
        max_epochs=args.epochs,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
        **args.invgan_params,
    )
    start = time.perf_counter()
    detector.fit(X_train[normal])
    fit_seconds = time.perf_counter() - start
    start = time.perf_counter()
    scores = detector.score_samples(X_eval)
    score_seconds = time.perf_counter() - start
    y = np.where(y_eval == digit, -1, 1)
    codes = detector.transform(X_eval)
    log_prior = standard_normal_log_prob(torch.from_numpy(codes).double()).numpy()
    return {
        "digit": digit,
        "auroc": roc_auc(y, scores),
        # The two terms of the log-likelihood, each ranked alone.
        "auroc_prior_term": roc_auc(y, log_prior),
        "auroc_volume_term": roc_auc(y, scores - log_prior),
        "auroc_with_residual": roc_auc(
            y, detector.set_params(score_type="llk_residual").score_samples(X_eval)
        ),
        "train_rows": len(normal),
        "fit_seconds": fit_seconds,
        "score_seconds": score_seconds,
    }


def markdown(payload: dict) -> str:
    lines = ["# InvGAN on MNIST, one digit held out as the anomaly", ""]
    lines += [machine_markdown(payload["machine"]), f"Configuration: {payload['config']}", ""]
    lines += [
        "| held-out digit | AUROC (log-likelihood) | AUROC (+ residual) | prior term alone | "
        "volume term alone | fit (s) | score (s) |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in payload["digits"]:
        # Rows of runs made before the two terms were reported have no such entries.
        terms = [
            f"{row[key]:.3f}" if key in row else "-"
            for key in ("auroc_prior_term", "auroc_volume_term")
        ]
        lines.append(
            f"| {row['digit']} | {row['auroc']:.3f} | {row['auroc_with_residual']:.3f} | "
            f"{terms[0]} | {terms[1]} | {row['fit_seconds']:.0f} | {row['score_seconds']:.0f} |"
        )
    aurocs = [row["auroc"] for row in payload["digits"]]
    residual = [row["auroc_with_residual"] for row in payload["digits"]]
    lines += [
        "",
        f"Mean over {len(aurocs)} digit(s): {np.mean(aurocs):.3f} +- {np.std(aurocs):.3f} "
        f"(paper, all ten digits: {PAPER_MEAN:.3f} +- {PAPER_STD:.3f}); with the residual "
        f"term {np.mean(residual):.3f} +- {np.std(residual):.3f}.",
        "",
    ]
    if all("auroc_prior_term" in row for row in payload["digits"]):
        prior = [row["auroc_prior_term"] for row in payload["digits"]]
        volume = [row["auroc_volume_term"] for row in payload["digits"]]
        lines += [
            f"The terms alone: prior {np.mean(prior):.3f} +- {np.std(prior):.3f}, volume "
            f"{np.mean(volume):.3f} +- {np.std(volume):.3f}.",
            "",
        ]
    lines += [
        f"Wall-clock time of the whole run: {payload['wall_seconds'] / 60:.1f} min.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=list(CONFIGS), default="cpu")
    parser.add_argument("--digits", type=int, nargs="+", default=list(range(10)))
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--eval-size", type=int)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--threads", type=int, default=None, help="torch threads per digit")
    parser.add_argument("--n-jobs", type=int, default=1, help="digits fitted at a time")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument(
        "--invgan-params", default="{}", help="JSON object of further InvGANDetector parameters"
    )
    parser.add_argument("--output", default=None, help="result file stem")
    args = parser.parse_args()
    args.invgan_params = json.loads(args.invgan_params)
    for key, value in CONFIGS[args.config].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.threads:
        torch.set_num_threads(args.threads)
    home = data_home()
    X_train, y_train = load_mnist(subset="train", data_home=home, return_X_y=True)
    X_test, y_test = load_mnist(subset="test", data_home=home, return_X_y=True)
    if args.eval_size is not None and args.eval_size < len(X_test):
        keep = np.sort(np.random.default_rng(args.seed).choice(len(X_test), args.eval_size, False))
        X_test, y_test = X_test[keep], y_test[keep]
    X_train, X_test = _padded(X_train), _padded(X_test)
    start = time.perf_counter()
    # One process per held-out digit when --n-jobs > 1: the digits are independent fits.
    jobs = [
        (
            ("InvGAN", f"MNIST without digit {digit}", args.seed),
            delayed(run_digit)(digit, args, X_train, y_train, X_test, y_test),
        )
        for digit in args.digits
    ]
    rows = parallel_runs(jobs, n_jobs=args.n_jobs, progress=RunProgress(len(jobs)))
    wall_seconds = time.perf_counter() - start
    for row in rows:
        print(f"digit {row['digit']}: AUROC {row['auroc']:.3f}", flush=True)
    train = "all" if args.train_size is None else f"{args.train_size}"
    evaluation = "all 10,000" if args.eval_size is None else f"{args.eval_size}"
    payload = {
        "machine": machine(),
        "config": (
            f"{args.config}: {train} training images of the nine normal digits, {args.epochs} "
            f"epochs, batch 64, latent 50, {evaluation} test images of all ten digits, seed "
            f"{args.seed}, device {args.device}, {args.n_jobs} digit(s) at a time with "
            f"{args.threads or 'default'} torch thread(s) each, InvGAN parameters "
            f"{json.dumps(args.invgan_params)}"
        ),
        "wall_seconds": wall_seconds,
        "digits": rows,
        "paper": {"mean": PAPER_MEAN, "std": PAPER_STD},
    }
    stem = args.output or f"invgan_mnist_{args.config}"
    write_results(stem, payload, markdown(payload))


if __name__ == "__main__":
    main()
