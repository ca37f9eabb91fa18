"""Conformal guarantees on real tables: false-positive rate and false discovery rate.

Protocol, per set and split (Bates et al., "Testing for outliers with conformal p-values",
Annals of Statistics 2023, section 6; the same protocol for every detector):

1. The inliers are shuffled with the split's seed and cut into a training part (40 %), a
   calibration part (30 %) and test inliers (30 %); every outlier of the set joins the test
   rows. Nothing of the test rows is seen before scoring.
2. ``ConformalDetector(detector, alpha)`` is fitted on the training part with the calibration
   part given explicitly (``X_calibration``), and scores the test rows.
3. Reported over the splits, with standard errors: the false-positive rate among test inliers of
   ``p <= alpha`` (the guarantee: its expectation is at most ``alpha``); the realised false
   discovery rate and the power of the Benjamini-Hochberg flags at level ``alpha``; and beside
   them the detector's own threshold from ``contamination=alpha`` fitted on the training part
   (the percentile of its training scores), which has no such guarantee.

Usage::

    python benchmarks/conformal.py
    python benchmarks/conformal.py --splits 100 --dlsgan-splits 20
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import RunProgress, data_home, machine, machine_markdown, write_results
from sklearn.ensemble import IsolationForest

from skood import ConformalDetector, DLSGANDetector
from skood.datasets import load_arrhythmia, load_odds

SETS = ("arrhythmia", "wbc", "breastw")


def _load(name: str) -> tuple[np.ndarray, np.ndarray]:
    if name == "arrhythmia":
        return load_arrhythmia(return_X_y=True)
    return load_odds(name, data_home=data_home(), return_X_y=True)


def _split(y: np.ndarray, seed: int):
    rng = np.random.RandomState(seed)
    inliers = rng.permutation(np.flatnonzero(y == 1))
    n_train, n_calibration = int(0.4 * inliers.size), int(0.3 * inliers.size)
    train = inliers[:n_train]
    calibration = inliers[n_train : n_train + n_calibration]
    test = np.r_[inliers[n_train + n_calibration :], np.flatnonzero(y == -1)]
    return train, calibration, test


def _rates(flagged: np.ndarray, is_outlier: np.ndarray) -> tuple[float, float, float]:
    """False-positive rate among inliers, realised FDR (0 without discoveries), power."""
    false = np.sum(flagged & ~is_outlier)
    true = np.sum(flagged & is_outlier)
    fpr = false / max(1, np.sum(~is_outlier))
    fdr = false / max(1, false + true)
    return float(fpr), float(fdr), float(true / max(1, np.sum(is_outlier)))


def _detector(name: str, seed: int, contamination: float):
    if name == "IsolationForest":
        return IsolationForest(random_state=seed, contamination=contamination)
    return DLSGANDetector(random_state=seed, device="cpu", contamination=contamination)


def run_split(detector_name: str, X, y, seed: int, alpha: float) -> dict:
    train, calibration, test = _split(y, seed)
    is_outlier = y[test] == -1
    conformal = ConformalDetector(_detector(detector_name, seed, alpha), alpha=alpha)
    conformal.fit(X[train], X_calibration=X[calibration])
    p = conformal.p_values(X[test])
    marginal = _rates(p <= alpha, is_outlier)
    bh = _rates(conformal.set_params(fdr=True).predict(X[test]) == -1, is_outlier)
    # The detector's own contamination threshold on its training scores, from the same fit.
    own = _rates(conformal.detector_.predict(X[test]) == -1, is_outlier)
    return {"p_le_alpha": marginal, "bh": bh, "contamination": own}


def summarise(runs: list[dict]) -> dict:
    summary = {}
    for rule in ("p_le_alpha", "bh", "contamination"):
        values = np.array([run[rule] for run in runs])  # (splits, 3): fpr, fdr, power
        mean = values.mean(0)
        se = values.std(0, ddof=1) / np.sqrt(len(values)) if len(values) > 1 else np.zeros(3)
        summary[rule] = {
            name: {"mean": float(m), "se": float(s)}
            for name, m, s in zip(("fpr", "fdr", "power"), mean, se, strict=True)
        }
    return summary


def markdown(info: dict, results: dict, alpha: float) -> str:
    lines = [
        "# Conformal p-values: false-positive rate and false discovery rate on real tables",
        "",
        machine_markdown(info),
        f"Protocol: `benchmarks/conformal.py` docstring; alpha = q = {alpha}. Mean ± standard "
        "error over the splits. `p <= alpha`: inliers flagged should be at most alpha in "
        "expectation; BH: realised FDR at most alpha in expectation; contamination: the "
        "detector's own threshold (percentile of its training scores), no guarantee.",
        "",
        "| set | detector | splits | rule | FPR (inliers) | FDR | power |",
        "|---|---|---|---|---|---|---|",
    ]
    for key, entry in results.items():
        dataset, detector = key.split("/")
        for rule, label in (
            ("p_le_alpha", "p <= alpha"),
            ("bh", "BH"),
            ("contamination", "contamination"),
        ):
            cells = [
                f"{entry['summary'][rule][m]['mean']:.3f} ± {entry['summary'][rule][m]['se']:.3f}"
                for m in ("fpr", "fdr", "power")
            ]
            lines.append(
                f"| {dataset} | {detector} | {entry['splits']} | {label} | "
                + " | ".join(cells)
                + " |"
            )
    lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--splits", type=int, default=100)
    parser.add_argument("--dlsgan-splits", type=int, default=20, help="0 skips DLSGAN")
    parser.add_argument("--alpha", type=float, default=0.1)
    parser.add_argument("--output", default="conformal")
    args = parser.parse_args()

    plan = [(name, "IsolationForest", args.splits) for name in SETS]
    if args.dlsgan_splits:
        plan.append(("arrhythmia", "DLSGANDetector", args.dlsgan_splits))
    progress = RunProgress(len(plan))
    results = {}
    for dataset, detector, n_splits in plan:
        X, y = _load(dataset)
        with progress.run(detector, dataset, f"0-{n_splits - 1}"):
            runs = [run_split(detector, X, y, seed, args.alpha) for seed in range(n_splits)]
        results[f"{dataset}/{detector}"] = {"splits": n_splits, "summary": summarise(runs)}
    info = machine()
    payload = {"machine": info, "alpha": args.alpha, "results": results}
    write_results(args.output, payload, markdown(info, results, args.alpha))


if __name__ == "__main__":
    main()
