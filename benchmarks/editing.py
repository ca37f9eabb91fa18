"""ConditionalDLSGAN's edits and the detectors' ``explain``, measured.

Parts (``--datasets``; each writes ``results/editing_<part>[_quick | _long].json`` and ``.md``):

* ``mnist``, ``fashion_mnist``: a ConditionalDLSGAN on training images with their class
  labels, and a DLSGANDetector with the same settings beside it. Held-out test images of
  each class are edited to each other class at ``value=1.0``; an independent classifier (the
  convolutional classifier of ``skood.PostHocDetector``, trained apart on all 60,000
  training images for 5 epochs, its clean test accuracy reported) says in what share of
  edits it sees the target class. Along ``edit_path`` from -1 to +1 the classifier's
  probability of the target class should rise: the share of paths where it never falls (and
  where it never falls by more than 0.01). Reconstruction PSNR of ``G(E(x))`` on test images
  (peak-to-peak 2 for pixels in [-1, 1]) of both models. A grid of edit paths is saved to
  ``docs/images/editing_<dataset>.png`` (rows: inputs, one per class, each edited toward the
  next class; first column the input, then the values).
* ``breast_cancer``: scikit-learn's breast cancer table, the diagnosis as one binary
  attribute (1 = benign). Test rows are edited to the other diagnosis (``value=+-1``); an
  independent classifier (standardized LogisticRegression) gives the edit rate. The mean
  absolute change per feature (in training standard deviations) of the edits is set beside
  the change that a nearest-neighbour counterfactual needs (the nearest training row of the
  other class, in standardized units). Over ``--seeds`` splits.
* ``explain``: the synthetic table of tests/test_explain.py (inliers on a curved 2-D manifold
  in 8 columns, outliers shifted by +-6 standard deviations in columns 2 and 5): the share of
  outliers whose two largest standardized deviations are those two columns, for each
  detector with ``explain``, over ``--seeds`` seeds. Then DLSGANDetector on Arrhythmia
  (``skood.datasets.load_arrhythmia``), fitted on all rows: the features it names most often
  among the three largest standardized deviations of the 66 outliers, beside the features
  with the largest plain z-scores of the same rows.

``--quick`` runs a minutes-long smoke configuration; ``--config long`` trains the image models on
all 60,000 training images for 3 epochs (5,625 steps, about 35 minutes a model on 2 threads)
instead of the default 12,000 images for 2 epochs (750 steps), and writes
``results/editing_<part>_long``.

Usage::

    python benchmarks/editing.py --datasets breast_cancer explain
    python benchmarks/editing.py --datasets mnist fashion_mnist --quick
    python benchmarks/editing.py --datasets mnist fashion_mnist
    python benchmarks/editing.py --datasets mnist --config long --threads 2
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from _common import REPOSITORY, data_home, machine, machine_markdown, pyplot, write_results

PARTS = ("mnist", "fashion_mnist", "breast_cancer", "explain")
IMAGES = REPOSITORY / "docs" / "images"
# Image configurations: training images, epochs, held-out inputs per class, path values.
IMAGE_CONFIG = {
    "quick": {"n_train": 2000, "epochs": 1, "per_class": 2, "latent_dim": 32},
    "cpu": {"n_train": 12000, "epochs": 2, "per_class": 10, "latent_dim": 32},
    "long": {"n_train": 60000, "epochs": 3, "per_class": 10, "latent_dim": 32},
}
PATH_VALUES = np.linspace(-1.0, 1.0, 9)


def _suffix(config_name: str) -> str:
    """What the result files and grids of a configuration add to their names ("cpu": none)."""
    return "" if config_name == "cpu" else f"_{config_name}"


def _set_threads(n_threads: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", str(n_threads))
    torch.set_num_threads(n_threads)


# ----------------------------------------------------------------------------- images
def psnr(images: np.ndarray, reconstructions: np.ndarray) -> float:
    """Mean PSNR over images in [-1, 1] (peak-to-peak 2)."""
    mse = np.mean((images - reconstructions) ** 2, axis=1)
    return float(np.mean(10 * np.log10(4.0 / np.maximum(mse, 1e-12))))


class _ClassifierJudge:
    """``predict``/``predict_proba``/``classes_`` of a fitted PostHocDetector's classifier."""

    def __init__(self, detector):
        self.detector = detector
        self.classes_ = detector.classes_

    def predict(self, X):
        return self.detector.predict_class(X)

    def predict_proba(self, X):
        return self.detector.predict_class_proba(X)


def image_part(dataset: str, config_name: str, seed: int) -> tuple[dict, str]:
    from skood import ConditionalDLSGAN, DLSGANDetector, PostHocDetector
    from skood.datasets import load_fashion_mnist, load_mnist

    config = IMAGE_CONFIG[config_name]
    quick = config_name == "quick"
    loader = load_mnist if dataset == "mnist" else load_fashion_mnist
    X_train, y_train = loader(subset="train", data_home=data_home(), return_X_y=True)
    X_test, y_test = loader(subset="test", data_home=data_home(), return_X_y=True)
    rng = np.random.RandomState(seed)
    rows = rng.permutation(len(X_train))[: config["n_train"]]
    X_fit, y_fit = X_train[rows], y_train[rows]

    started = time.perf_counter()
    # LogisticRegression on pixels reaches 0.91 on MNIST but 0.83 on Fashion-MNIST; a CNN
    # trained apart from the GAN is a judge that clears 0.9 on both.
    judge = _ClassifierJudge(
        PostHocDetector(
            input_shape=(1, 28, 28),
            max_epochs=1 if quick else 5,
            device="cpu",
            random_state=seed,
        ).fit(X_train[:2000] if quick else X_train, y_train[:2000] if quick else y_train)
    )
    judge_accuracy = float(np.mean(judge.predict(X_test) == y_test))
    judge_seconds = time.perf_counter() - started

    common = {
        "input_shape": (1, 28, 28),
        "latent_dim": config["latent_dim"],
        "max_epochs": config["epochs"],
        "variance_decay": 0.99,
        "device": "cpu",
        "random_state": seed,
    }
    started = time.perf_counter()
    model = ConditionalDLSGAN(**common).fit(X_fit, y_fit)
    conditional_seconds = time.perf_counter() - started
    started = time.perf_counter()
    baseline = DLSGANDetector(**common).fit(X_fit)
    baseline_seconds = time.perf_counter() - started

    # Held-out inputs: the first per_class test images of each class.
    inputs = np.concatenate([np.flatnonzero(y_test == c)[: config["per_class"]] for c in range(10)])
    X_in, y_in = X_test[inputs], y_test[inputs]
    recognised = np.zeros((10, 10))
    counts = np.zeros((10, 10))
    monotone = strict = n_paths = 0
    for target in range(10):
        others = y_in != target
        edited = model.edit(X_in[others], target, 1.0)
        hits = judge.predict(edited) == target
        np.add.at(recognised, (y_in[others], target), hits)
        np.add.at(counts, (y_in[others], target), 1)
        paths = model.edit_path(X_in[others], target, PATH_VALUES)
        column = list(judge.classes_).index(target)
        proba = judge.predict_proba(paths.reshape(-1, paths.shape[-1]))[:, column]
        proba = proba.reshape(paths.shape[0], len(PATH_VALUES))
        steps = np.diff(proba, axis=1)
        strict += int(np.sum(np.all(steps >= 0, axis=1)))
        monotone += int(np.sum(np.all(steps >= -0.01, axis=1)))
        n_paths += paths.shape[0]
    per_source = recognised.sum(1) / counts.sum(1)
    test_rows = X_test[:1000]
    reconstruction = {
        "ConditionalDLSGAN": psnr(test_rows, model.inverse_transform(model.transform(test_rows))),
        "DLSGANDetector": psnr(
            test_rows, baseline.inverse_transform(baseline.transform(test_rows))
        ),
    }
    # The judge on the reconstructions: how much of the class survives G(E(x)).
    kept = float(np.mean(judge.predict(model.inverse_transform(model.transform(X_in))) == y_in))
    grid = _save_grid(model, X_test, y_test, dataset, _suffix(config_name))
    result = {
        "config": config,
        "seed": seed,
        "judge_accuracy": judge_accuracy,
        "judge_seconds": judge_seconds,
        "fit_seconds": {
            "ConditionalDLSGAN": conditional_seconds,
            "DLSGANDetector": baseline_seconds,
        },
        "edit_rate": float(recognised.sum() / counts.sum()),
        "edit_rate_by_source": per_source.tolist(),
        "edit_rate_by_target": (recognised.sum(0) / counts.sum(0)).tolist(),
        "recognised_matrix": (recognised / np.maximum(counts, 1)).tolist(),
        "reconstruction_class_kept": kept,
        "monotone_paths": monotone / n_paths,
        "strictly_monotone_paths": strict / n_paths,
        "n_edits": int(counts.sum()),
        "path_values": PATH_VALUES.tolist(),
        "psnr": reconstruction,
        "grid": str(grid.relative_to(REPOSITORY)) if grid else None,
    }
    text = (
        f"## {dataset}\n\n"
        f"{config['n_train']} training images, {config['epochs']} epochs, latent "
        f"{config['latent_dim']}, small networks, trace decay 0.99, seed {seed}. Fits: "
        f"ConditionalDLSGAN {conditional_seconds:.0f} s, DLSGANDetector "
        f"{baseline_seconds:.0f} s.\n\n"
        f"| measure | value |\n|---|---|\n"
        f"| independent classifier (PostHocDetector's CNN), clean test accuracy | "
        f"{judge_accuracy:.3f} |\n"
        f"| edits (value=1.0) recognised as the target class | {100 * result['edit_rate']:.1f} % "
        f"of {result['n_edits']} |\n"
        f"| reconstructions G(E(x)) recognised as the input's class | {100 * kept:.1f} % |\n"
        f"| edit paths (-1 to +1, 9 steps) whose target probability never falls by > 0.01 | "
        f"{100 * result['monotone_paths']:.1f} % |\n"
        f"| edit paths whose target probability never falls | "
        f"{100 * result['strictly_monotone_paths']:.1f} % |\n"
        "| reconstruction PSNR (dB), ConditionalDLSGAN | "
        f"{reconstruction['ConditionalDLSGAN']:.2f} |\n"
        "| reconstruction PSNR (dB), DLSGANDetector | "
        f"{reconstruction['DLSGANDetector']:.2f} |\n\n"
        "Edit rate by source class: "
        + ", ".join(f"{c}: {100 * r:.0f} %" for c, r in enumerate(per_source))
        + "  \nEdit rate by target class: "
        + ", ".join(f"{c}: {100 * r:.0f} %" for c, r in enumerate(result["edit_rate_by_target"]))
        + (f"  \nGrid of edit paths: `{result['grid']}`\n" if grid else "\n")
    )
    return result, text


def _save_grid(model, X_test, y_test, dataset: str, suffix: str) -> Path | None:
    plt = pyplot()
    if plt is None:
        return None
    rows = np.array([np.flatnonzero(y_test == c)[100] for c in range(10)])
    inputs, labels = X_test[rows], y_test[rows]
    values = np.linspace(-1.0, 1.0, 7)
    paths = np.stack(
        [model.edit_path(inputs[i : i + 1], (labels[i] + 1) % 10, values)[0] for i in range(10)]
    )
    figure, axes = plt.subplots(10, len(values) + 1, figsize=(1.1 * (len(values) + 1), 11.5))
    for i in range(10):
        axes[i, 0].imshow(inputs[i].reshape(28, 28), cmap="gray", vmin=-1, vmax=1)
        axes[i, 0].set_ylabel(f"{labels[i]} -> {(labels[i] + 1) % 10}", fontsize=8)
        for j, value in enumerate(values):
            axes[i, j + 1].imshow(paths[i, j].reshape(28, 28), cmap="gray", vmin=-1, vmax=1)
            if i == 0:
                axes[i, j + 1].set_title(f"{value:+.2f}", fontsize=8)
    axes[0, 0].set_title("input", fontsize=8)
    for axis in axes.ravel():
        axis.set_xticks([])
        axis.set_yticks([])
    figure.suptitle(f"ConditionalDLSGAN edit paths, {dataset} (row: source -> target class)")
    figure.tight_layout()
    IMAGES.mkdir(parents=True, exist_ok=True)
    path = IMAGES / f"editing_{dataset}{suffix}.png"
    figure.savefig(path, dpi=80)
    plt.close(figure)
    return path


# ----------------------------------------------------------------------------- breast cancer
def breast_cancer_part(quick: bool, seeds: int) -> tuple[dict, str]:
    import pandas as pd
    from sklearn.datasets import load_breast_cancer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.neighbors import NearestNeighbors
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from skood import ConditionalDLSGAN

    data = load_breast_cancer()
    X, y = data.data, data.target  # 1 = benign
    epochs = 20 if quick else 200
    runs = []
    for seed in range(seeds):
        X_train, X_test, y_train, y_test = train_test_split(
            X, y, test_size=0.3, stratify=y, random_state=seed
        )
        judge = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        judge.fit(X_train, y_train)
        started = time.perf_counter()
        model = ConditionalDLSGAN(
            latent_dim=16, max_epochs=epochs, variance_decay=0.99, device="cpu", random_state=seed
        ).fit(X_train, pd.DataFrame({"benign": y_train}))
        seconds = time.perf_counter() - started
        target = 1 - y_test
        edited = model.edit(X_test, "benign", np.where(target == 1, 1.0, -1.0))
        scale = X_train.std(axis=0)
        reconstruction = model.inverse_transform(model.transform(X_test))
        # Nearest training row of the other class, in standardized units.
        counterfactual = np.empty_like(X_test)
        for label in (0, 1):
            pool = X_train[y_train == label]
            finder = NearestNeighbors(n_neighbors=1).fit(pool / scale)
            rows = target == label
            _, index = finder.kneighbors(X_test[rows] / scale)
            counterfactual[rows] = pool[index[:, 0]]
        edit_change = np.abs(edited - X_test) / scale
        counterfactual_change = np.abs(counterfactual - X_test) / scale
        runs.append(
            {
                "seed": seed,
                "fit_seconds": seconds,
                "judge_accuracy": float(judge.score(X_test, y_test)),
                "edit_rate": float(np.mean(judge.predict(edited) == target)),
                "edit_rate_by_target": {
                    "benign": float(np.mean(judge.predict(edited[target == 1]) == 1)),
                    "malignant": float(np.mean(judge.predict(edited[target == 0]) == 0)),
                },
                "reconstruction_diagnosis_kept": float(
                    np.mean(judge.predict(reconstruction) == y_test)
                ),
                "counterfactual_rate": float(np.mean(judge.predict(counterfactual) == target)),
                "edit_change_per_feature": edit_change.mean(0).tolist(),
                "counterfactual_change_per_feature": counterfactual_change.mean(0).tolist(),
                "edit_change": float(edit_change.mean()),
                "counterfactual_change": float(counterfactual_change.mean()),
                "reconstruction_change": float((np.abs(reconstruction - X_test) / scale).mean()),
            }
        )

    def mean(key):
        return float(np.mean([run[key] for run in runs]))

    edit_features = np.mean([run["edit_change_per_feature"] for run in runs], axis=0)
    cf_features = np.mean([run["counterfactual_change_per_feature"] for run in runs], axis=0)
    order = np.argsort(-edit_features)[:8]
    summary = {
        key: mean(key)
        for key in (
            "judge_accuracy",
            "edit_rate",
            "reconstruction_diagnosis_kept",
            "counterfactual_rate",
            "edit_change",
            "counterfactual_change",
            "reconstruction_change",
            "fit_seconds",
        )
    }
    text = (
        f"## breast_cancer\n\n"
        f"load_breast_cancer, 70/30 stratified splits, {seeds} seeds; ConditionalDLSGAN "
        f"(latent 16, {epochs} epochs, trace decay 0.99) with the diagnosis as one binary "
        "attribute (benign); test rows edited to the other diagnosis at value +-1. Judge: "
        "StandardScaler + LogisticRegression on the training rows.\n\n"
        "| measure | mean over seeds |\n|---|---|\n"
        f"| judge clean test accuracy | {summary['judge_accuracy']:.3f} |\n"
        f"| edits recognised as the other diagnosis | {100 * summary['edit_rate']:.1f} % |\n"
        f"| nearest-neighbour counterfactuals recognised so | "
        f"{100 * summary['counterfactual_rate']:.1f} % |\n"
        f"| reconstructions keeping their diagnosis | "
        f"{100 * summary['reconstruction_diagnosis_kept']:.1f} % |\n"
        f"| mean absolute change per feature (training sd), edit | {summary['edit_change']:.3f} |\n"
        f"| same, nearest-neighbour counterfactual | {summary['counterfactual_change']:.3f} |\n"
        f"| same, plain reconstruction G(E(x)) | {summary['reconstruction_change']:.3f} |\n"
        f"| fit time | {summary['fit_seconds']:.1f} s |\n\n"
        "Per seed edit rate: "
        + ", ".join(f"{100 * run['edit_rate']:.1f} %" for run in runs)
        + " (to benign / to malignant: "
        + ", ".join(
            f"{100 * run['edit_rate_by_target']['benign']:.0f}/"
            f"{100 * run['edit_rate_by_target']['malignant']:.0f} %"
            for run in runs
        )
        + ").\n\nFeatures the edits change most (training sd; counterfactual beside):\n\n"
        "| feature | edit | counterfactual |\n|---|---|---|\n"
        + "".join(
            f"| {data.feature_names[i]} | {edit_features[i]:.2f} | {cf_features[i]:.2f} |\n"
            for i in order
        )
    )
    return {"runs": runs, "summary": summary, "epochs": epochs}, text


# ----------------------------------------------------------------------------- explain
def two_column_table(seed=0, n_rows=1000, n_outliers=50, shift=6.0):
    """The table of tests/test_explain.py (columns 2 and 5 shifted in the outliers)."""
    rng = np.random.RandomState(seed)
    mixing = rng.normal(size=(2, 8))
    codes = rng.normal(size=(n_rows + n_outliers, 2))
    X = np.tanh(codes) @ mixing + 0.1 * rng.normal(size=(n_rows + n_outliers, 8))
    X /= X[:n_rows].std(axis=0)
    outliers = X[n_rows:].copy()
    outliers[:, [2, 5]] += shift * rng.choice([-1, 1], size=(n_outliers, 2))
    return X[:n_rows], outliers


def explain_part(quick: bool, seeds: int) -> tuple[dict, str]:
    from skood import AutoencoderDetector, ConditionalDLSGAN, DLSGANDetector, InvGANDetector
    from skood.datasets import load_arrhythmia

    nets = {"hidden_dims": (32, 32), "max_epochs": 10, "device": "cpu"}
    factories = {
        "DLSGANDetector": lambda s: DLSGANDetector(
            latent_dim=4, variance_decay=0.99, random_state=s, **nets
        ),
        "ConditionalDLSGAN": lambda s: ConditionalDLSGAN(
            latent_dim=4, variance_decay=0.99, random_state=s, **nets
        ),
        "InvGANDetector": lambda s: InvGANDetector(latent_dim=2, random_state=s, **nets),
        "AutoencoderDetector": lambda s: AutoencoderDetector(latent_dim=2, random_state=s, **nets),
    }
    rates = {name: [] for name in factories}
    for seed in range(seeds):
        X, outliers = two_column_table(seed)
        for name, make in factories.items():
            detector = make(seed)
            if name == "ConditionalDLSGAN":
                detector.fit(X, (X[:, 0] > 0).astype(int))
            else:
                detector.fit(X)
            _, deviation = detector.explain(outliers)
            top = np.argsort(-np.abs(deviation) / detector.input_scale_, axis=1)[:, :2]
            rates[name].append(float(np.mean([set(t) == {2, 5} for t in top])))

    bunch = load_arrhythmia()
    X, y = bunch.data, bunch.target
    names = list(bunch.feature_names)
    epochs = 10 if quick else 30
    detector = DLSGANDetector(max_epochs=epochs, device="cpu", random_state=0).fit(X)
    outlier_rows = X[y == -1]
    _, deviation = detector.explain(outlier_rows)
    standardized = np.abs(deviation) / detector.input_scale_
    top3 = np.argsort(-standardized, axis=1)[:, :3]
    named = Counter(names[i] for row in top3 for i in row)
    zscores = np.abs(outlier_rows - detector.input_mean_) / detector.input_scale_
    ztop3 = np.argsort(-zscores, axis=1)[:, :3]
    znamed = Counter(names[i] for row in ztop3 for i in row)
    overlap = float(np.mean([len(set(a) & set(b)) / 3 for a, b in zip(top3, ztop3, strict=True)]))
    auc = None
    try:
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(y == -1, -detector.score_samples(X)))
    except ValueError:
        pass
    per_outlier = {
        int(i): [names[j] for j in row]
        for i, row in zip(np.flatnonzero(y == -1), top3, strict=True)
    }
    result = {
        "synthetic_rates": rates,
        "synthetic_random_rate": 1 / 28,
        "arrhythmia": {
            "epochs": epochs,
            "roc_auc": auc,
            "most_named": named.most_common(15),
            "most_named_by_zscore": znamed.most_common(15),
            "top3_overlap_with_zscore": overlap,
            "top3_per_outlier": per_outlier,
        },
    }
    text = (
        "## explain\n\n"
        f"Synthetic table (1,000 inliers on a curved 2-D manifold in 8 columns, 50 outliers "
        f"shifted by +-6 sd in columns 2 and 5), {seeds} seeds, 10 epochs: share of outliers "
        "whose two largest standardized deviations are columns 2 and 5 (at random 3.6 %).\n\n"
        "| detector | mean | per seed |\n|---|---|---|\n"
        + "".join(
            f"| {name} | {100 * np.mean(r):.1f} % | {', '.join(f'{100 * v:.0f}' for v in r)} |\n"
            for name, r in rates.items()
        )
        + f"\nArrhythmia (452 x 274, 66 outliers), DLSGANDetector defaults, {epochs} epochs, "
        f"fitted on every row (ROC AUC of its score {auc:.3f}). Features named most often among "
        "the three largest standardized deviations of the outliers (count of 66), beside the "
        "features with the largest plain z-scores of the same rows:\n\n"
        "| explain | count | z-score | count |\n|---|---|---|---|\n"
        + "".join(
            f"| {a} | {na} | {b} | {nb} |\n"
            for (a, na), (b, nb) in zip(named.most_common(10), znamed.most_common(10), strict=False)
        )
        + f"\nMean share of an outlier's three explain features that are also its three largest "
        f"z-scores: {100 * overlap:.0f} %.\n"
    )
    return result, text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", choices=PARTS, default=list(PARTS))
    parser.add_argument("--quick", action="store_true", help="minutes-long smoke configuration")
    parser.add_argument(
        "--config",
        choices=tuple(IMAGE_CONFIG),
        default=None,
        help="image configuration (default: cpu, or quick with --quick)",
    )
    parser.add_argument("--seeds", type=int, default=None, help="seeds of the table parts")
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    _set_threads(args.threads)
    config_name = args.config or ("quick" if args.quick else "cpu")
    quick = config_name == "quick"  # --config quick is --quick for the table parts too
    seeds = args.seeds if args.seeds is not None else (1 if quick else 3)
    suffix = _suffix(config_name)
    for part in args.datasets:
        started = time.perf_counter()
        if part in ("mnist", "fashion_mnist"):
            result, text = image_part(part, config_name, seed=0)
        elif part == "breast_cancer":
            result, text = breast_cancer_part(quick, seeds)
        else:
            result, text = explain_part(quick, seeds)
        info = machine()
        seconds = time.perf_counter() - started
        result = {"machine": info, "quick": quick, "seconds": seconds, **result}
        header = f"# ConditionalDLSGAN editing and explain: {part}\n\n{machine_markdown(info)}\n"
        write_results(
            f"editing_{part}{suffix}", result, header + text + f"\nTotal {seconds:.0f} s.\n"
        )


if __name__ == "__main__":
    main()
