"""Command-line entry point: ``python -m skood demo`` and ``python -m skood info``."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

__all__ = ["main"]


# The best skood configurations of the tabular benchmark (docs/tabular.md): over its 31
# tables, five jointly trained flows (log-likelihood); on Arrhythmia, ten DLSGANs on half the
# features each (the ensemble setting chosen on validation rows of the 31 tables).
_BEST_OVER_THE_BENCHMARK = "5 flows (log-likelihood)"
_BEST_ON_ARRHYTHMIA = "10 DLSGANs, half the features (reconstruction)"


def _demo_detectors(random_state: int, device: str) -> dict:
    from sklearn.ensemble import IsolationForest
    from sklearn.svm import OneClassSVM

    from .dlsgan import DLSGANDetector
    from .ensemble import BaggingDetector
    from .flow import ApproximateMassFlowDetector

    return {
        "DLSGAN (NLP)": DLSGANDetector(score_type="nlp", random_state=random_state, device=device),
        _BEST_ON_ARRHYTHMIA: BaggingDetector(
            DLSGANDetector(score_type="reconstruction", device=device),
            n_estimators=10,
            max_features=0.5,
            random_state=random_state,
        ),
        _BEST_OVER_THE_BENCHMARK: BaggingDetector(
            ApproximateMassFlowDetector(score_type="log_likelihood", device=device),
            n_estimators=5,
            random_state=random_state,
        ),
        "IsolationForest": IsolationForest(random_state=random_state),
        "OneClassSVM": OneClassSVM(gamma="auto"),
    }


def run_demo(n_seeds: int = 3, device: str = "auto", stream=None, plot=None) -> dict:
    """Fit skood's detectors beside IsolationForest and OneClassSVM on the embedded Arrhythmia data.

    DLSGAN with its defaults and the best skood configurations of the tabular benchmark
    (``docs/tabular.md``): ten jointly trained DLSGANs, each on a random half of the features,
    scoring by reconstruction (the best on Arrhythmia there), and five jointly trained flows
    scoring by log-likelihood (the best over its 31 tables).

    The protocol is the tabular benchmark's, except that the 60/40 split per seed is
    stratified: a StandardScaler fitted on the training part, detectors trained on the
    (contaminated) training part, and ROC AUC, average precision and F1 at the true
    contamination on the test part. Returns ``{detector: {metric: [value per seed]}}``. With
    ``plot`` (a file path; needs matplotlib), the ROC curves and DLSGAN's score histograms of
    the first split are written there.
    """
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    from .datasets import load_arrhythmia
    from .metrics import average_precision, f1_at_contamination, roc_auc

    stream = sys.stdout if stream is None else stream
    X, y = load_arrhythmia(return_X_y=True)
    print(
        f"Arrhythmia: {X.shape[0]} samples x {X.shape[1]} features, "
        f"{np.mean(y == -1):.1%} outliers; {n_seeds} random 60/40 splits.",
        file=stream,
    )
    results: dict = {}
    first_split: dict = {}  # test scores of the first split, for the plot
    for seed in range(n_seeds):
        X_train, X_test, _, y_test = train_test_split(
            X, y, test_size=0.4, random_state=seed, stratify=y
        )
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        if seed == 0:
            y_first = y_test
        for name, detector in _demo_detectors(seed, device).items():
            start = time.perf_counter()
            detector.fit(X_train)
            elapsed = time.perf_counter() - start
            scores = detector.score_samples(X_test)
            if seed == 0:
                first_split[name] = scores
            row = results.setdefault(name, {"roc_auc": [], "ap": [], "f1": [], "fit_s": []})
            row["roc_auc"].append(roc_auc(y_test, scores))
            row["ap"].append(average_precision(y_test, scores))
            row["f1"].append(f1_at_contamination(y_test, scores))
            row["fit_s"].append(elapsed)
    width = max(28, *(len(name) + 2 for name in results))
    header = f"{'detector':<{width}}{'ROC AUC':>10}{'avg prec':>10}{'F1':>8}{'fit (s)':>9}"
    print(header, file=stream)
    print("-" * len(header), file=stream)
    for name, row in results.items():
        print(
            f"{name:<{width}}{np.mean(row['roc_auc']):>10.3f}{np.mean(row['ap']):>10.3f}"
            f"{np.mean(row['f1']):>8.3f}{np.mean(row['fit_s']):>9.2f}",
            file=stream,
        )
    print(
        "Higher is better. Outliers are the positive class; F1 flags the lowest-scoring "
        "test samples in the true outlier proportion.",
        file=stream,
    )
    print(
        f"{_BEST_OVER_THE_BENCHMARK} is skood's best configuration over the 31 tables of the "
        f"tabular benchmark, {_BEST_ON_ARRHYTHMIA} its best on Arrhythmia there "
        "(docs/tabular.md).",
        file=stream,
    )
    if plot is not None:
        _plot_first_split(y_first, first_split, plot)
        print(
            f"Wrote the ROC curves and score histograms of the first split to {plot}.", file=stream
        )
    return results


def _plot_first_split(y_test: np.ndarray, scores: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")  # a file is written; no window opens
    import matplotlib.pyplot as plt

    from .plotting import plot_roc_curves, plot_score_histograms

    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    plot_roc_curves(y_test, scores, ax=axes[0])
    for axis, name in zip(axes[1:], ("DLSGAN (NLP)", "IsolationForest"), strict=True):
        plot_score_histograms(y_test, scores[name], clip_percentile=2, ax=axis)
        axis.set_title(f"{name}, test part of split 0")
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


def _plot_path_problem(path: str) -> str | None:
    """Why the demo could not write its plot to ``path``; None when it can.

    Checked before any training, so that a typo costs a usage error rather than a traceback
    after minutes of fitting.
    """
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError:
        return "writing the plot needs matplotlib (pip install matplotlib)"
    target = Path(path)
    if target.is_dir():
        return f"{path} is a folder; give a file name, such as {target / 'demo.png'}"
    folder = target.parent
    if not folder.is_dir():
        return f"the folder {folder} does not exist"
    if not os.access(folder, os.W_OK):
        return f"the folder {folder} is not writable"
    formats = FigureCanvasAgg.get_supported_filetypes()
    suffix = target.suffix[1:].lower()
    if suffix and suffix not in formats:
        listed = ", ".join(f".{name}" for name in sorted(formats))
        return f"matplotlib cannot write .{suffix} files; end the name with one of {listed}"
    return None


def _info(stream=None) -> None:
    import sklearn
    import skorch
    import torch

    from . import __version__

    stream = sys.stdout if stream is None else stream
    print(f"skood {__version__}", file=stream)
    print(f"python {platform.python_version()} on {platform.platform()}", file=stream)
    print(
        f"torch {torch.__version__}, skorch {skorch.__version__}, "
        f"scikit-learn {sklearn.__version__}, numpy {np.__version__}",
        file=stream,
    )
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "not available"
    print(f"CUDA: {cuda}; CPU threads used by torch: {torch.get_num_threads()}", file=stream)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m skood", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser(
        "demo",
        help="skood's detectors vs IsolationForest and OneClassSVM on the embedded Arrhythmia data",
    )
    demo.add_argument("--seeds", type=int, default=3, help="number of random splits (3)")
    demo.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N (auto)")
    demo.add_argument(
        "--plot",
        metavar="FILE",
        help="also write ROC curves and score histograms of the first split (needs matplotlib)",
    )
    commands.add_parser("info", help="versions and the compute device")
    args = parser.parse_args(argv)
    if args.command == "demo":
        # Usage errors of the demo subcommand, as argparse gives for --seeds abc.
        if args.seeds < 1:
            demo.error("--seeds must be at least 1")
        from .base import resolve_device

        try:
            resolve_device(args.device)
        except ValueError as error:
            demo.error(f"--device: {error}")
        problem = None if args.plot is None else _plot_path_problem(args.plot)
        if problem is not None:
            demo.error(f"--plot: {problem}")
        run_demo(n_seeds=args.seeds, device=args.device, plot=args.plot)
    else:
        _info()
    return 0


if __name__ == "__main__":
    sys.exit(main())
