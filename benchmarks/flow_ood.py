"""Fashion-MNIST -> MNIST OOD with the approximate-mass flow: penalised against vanilla.

Protocol (method reference: approximate_mass.md sections 4-6). One
:class:`~skood.flow.ApproximateMassFlowDetector` with ``alpha=2`` (batch-mean penalty) and one
with ``alpha=0`` (the vanilla maximum-likelihood RealNVP) are trained on Fashion-MNIST training
images, with the same seed, data and settings, in the same run. In-distribution evaluation:
``--eval-size`` Fashion-MNIST test images. OOD sets of the same size: the MNIST test split, and
the ten MNIST-C-style corruptions of ``skood.datasets.corruptions`` applied to the same
Fashion-MNIST test images; each set is used **far** (the OOD image) and **near**
(``0.1 * ood + 0.9 * id``, the ID image of the same index), as in ``mnist_ood.py``.

Scores are **per sample**: ``score_samples`` with ``score_type="approximate_mass"``
(``-||d log p(x)/dx||``, the paper's score) and ``"log_likelihood"``, midpoint dequantisation;
the approximate mass also averaged over ``--noise-draws`` dequantisation noise images
(``n_dequantization_draws``), closer to the authors' evaluation, which added fresh noise at
test time as in training.
The paper's published evaluation scored **batches of 32 test images** (one score per batch: the
batch mean of the per-sample gradient norms), which separates distributions far more easily;
its numbers are printed beside ours for reference only. The "groups of 32" columns reproduce
that batch-level protocol from our per-sample scores (mean over 32 consecutive test images).
Metrics (``skood.metrics``): AUROC, AUPR-In (in-distribution positive, as the paper's script),
TNR at 95% TPR, and balanced AUROC (larger class subsampled, 5 draws; ID and OOD sets have the
same size here, so it equals the AUROC). EMNIST and KMNIST (the paper's other Fashion-MNIST OOD
sets) are not available offline; their published rows are printed for context.

Two scores that need no training are computed on the same images as references: the
approximate mass of the flow at initialisation (its couplings start at the identity, so only
the dequantise/logit preprocessing and the standard normal remain) and the count of background
pixels. Fashion-MNIST -> MNIST is largely separated by how much black background an image has,
and the preprocessing's gradient at black pixels already measures that.

Configurations (``--config``):

* ``cpu``: the small image flow (2 scales, 1 residual block, 16 channels), ``--train-size``
  12,000 training images, 4 epochs, batch 64, lr 1e-3, 1,000 evaluation images per set. About
  an hour on two otherwise idle CPU cores.
* ``gpu``: as close to the paper as fits about 8 minutes on one H100: 2 scales, 4 residual
  blocks, 64 channels (the paper's grayscale flow), all 60,000 training images, batch 64,
  lr 1e-3, ``--epochs`` (default 4; the paper trains 200), all 10,000 evaluation images.

Every option can be overridden (``--epochs``, ``--train-size``, ...). Usage::

    python benchmarks/flow_ood.py --config cpu
    python benchmarks/flow_ood.py --config gpu --device cuda --output flow_ood_gpu

The tabular entry point (``--tabular``) runs the flow alone with ``tabular.py``'s protocol;
:func:`tabular_flow_scores` is what ``tabular.py`` calls to add the flow beside the others.
"""

from __future__ import annotations

import argparse
import functools
import time

import numpy as np
import torch
from _common import (
    RunProgress,
    data_home,
    machine,
    machine_markdown,
    parallel_runs,
    write_json,
    write_markdown,
    write_results,
)

from skood.datasets import load_fashion_mnist, load_mnist
from skood.datasets.corruptions import CORRUPTIONS, blend, corrupt
from skood.flow import ApproximateMassFlowDetector, log_prob_and_gradient_norm
from skood.metrics import average_precision, balanced_roc_auc, roc_auc, tnr_at_tpr
from skood.nn.realnvp import RealNVPImage

# The paper's numbers: AUROC of the approximate mass, Table 1.
PAPER_TABLE1 = {"vanilla": 0.977, "penalised": 0.994}
# Table 2, approximate mass, ID Fashion-MNIST: (AUROC, AUPR, TNR@95%TPR).
PAPER_TABLE2 = {
    "MNIST": (0.994, 0.971, 1.0),
    "EMNIST": (0.969, 0.969, 1.0),
    "KMNIST": (1.0, 0.996, 1.0),
}
OOD_SETS = ["mnist", *CORRUPTIONS]
MODELS = {"penalised": 2.0, "vanilla": 0.0}
# label: (score_type, dequantisation noise draws; None = --noise-draws).
SCORES = {
    "mass": ("approximate_mass", 0),
    "mass noise": ("approximate_mass", None),
    "LL": ("log_likelihood", 0),
}
GROUP = 32

CONFIGS = {
    "cpu": {
        "train_size": 12000,
        "epochs": 4,
        "eval_size": 1000,
        "n_blocks": 1,
        "mid_channels": 16,
        "batch_size": 64,
        "lr": 1e-3,
    },
    "gpu": {
        "train_size": 60000,
        "epochs": 4,
        "eval_size": 10000,
        "n_blocks": 4,
        "mid_channels": 64,
        "batch_size": 64,
        "lr": 1e-3,
    },
}


# ----------------------------------------------------------------------------- data
def _scaled(pixels: np.ndarray) -> np.ndarray:
    # skood's image convention: [-1, 1], the detector's default pixel_range.
    return (pixels.reshape(len(pixels), -1).astype(np.float32) / 127.5 - 1.0).astype(np.float32)


def build_sets(args) -> tuple[np.ndarray, np.ndarray, dict]:
    """Training rows, ID evaluation rows, and ``{(split, name): OOD rows}``."""
    home = data_home()
    rng = np.random.RandomState(args.seed)
    train = load_fashion_mnist(subset="train", data_home=home, scale=None).images
    if args.train_size < len(train):
        train = train[np.sort(rng.choice(len(train), args.train_size, replace=False))]
    fashion_test = load_fashion_mnist(subset="test", data_home=home, scale=None).images
    mnist_test = load_mnist(subset="test", data_home=home, scale=None).images
    size = min(args.eval_size, len(fashion_test))
    evaluation = np.sort(rng.choice(len(fashion_test), size, replace=False))
    id_images = fashion_test[evaluation]
    ood = {}
    for index, name in enumerate(OOD_SETS):
        if name == "mnist":
            far = mnist_test[evaluation]
        else:
            far = corrupt(id_images, name, random_state=1000 * args.seed + index)
        ood[("far", name)] = _scaled(far)
        ood[("near", name)] = _scaled(blend(far, id_images))
    return _scaled(train), _scaled(id_images), ood


# ----------------------------------------------------------------------------- metrics
def _group_means(scores: np.ndarray) -> np.ndarray:
    usable = len(scores) // GROUP * GROUP
    return scores[:usable].reshape(-1, GROUP).mean(axis=1)


def evaluate(id_scores: np.ndarray, ood_scores: np.ndarray, seed: int) -> dict:
    """Metrics with ID = +1 (inlier) and OOD = -1; scores higher = more normal."""
    y = np.r_[np.ones(len(id_scores)), -np.ones(len(ood_scores))]
    scores = np.r_[id_scores, ood_scores]
    grouped_id, grouped_ood = _group_means(id_scores), _group_means(ood_scores)
    grouped = np.r_[grouped_id, grouped_ood]
    y_grouped = np.r_[np.ones(len(grouped_id)), -np.ones(len(grouped_ood))]
    return {
        "auroc": roc_auc(y, scores),
        "aupr_in": average_precision(y, scores, positive="inlier"),
        "tnr_at_95_tpr": tnr_at_tpr(y, scores, tpr=0.95),
        "balanced_auroc": balanced_roc_auc(y, scores, n_repeats=5, random_state=seed),
        "auroc_groups_of_32": roc_auc(y_grouped, grouped) if len(grouped_id) > 1 else None,
    }


def bits_per_dim(log_likelihood: np.ndarray, n_pixels: int) -> float:
    """Bits per pixel of the 8-bit images from log-densities of [-1, 1] rows.

    ``log p`` in [-1, 1] units plus ``P log 2`` gives [0, 1] units; pixel levels are 1/255
    apart there, so the discrete log-likelihood is that minus ``P log 255``.
    """
    discrete = log_likelihood + n_pixels * np.log(2.0) - n_pixels * np.log(255.0)
    return float(np.mean(-discrete / (n_pixels * np.log(2.0))))


# ----------------------------------------------------------------------------- references
# Two scores that need no training, computed on the same images: how much of the separation
# the preprocessing and the background alone give.
REFERENCES = {
    "untrained mass": "the approximate mass of the flow before training (its couplings start "
    "at the identity, so it is the dequantise/logit preprocessing and a standard normal)",
    "background pixels": "minus the number of pixels at the lowest level (black background)",
}


@functools.cache
def _untrained_flow() -> RealNVPImage:
    return RealNVPImage((1, 28, 28), n_scales=2, n_blocks=1, mid_channels=4).double()


def reference_scores(name: str, X: np.ndarray) -> np.ndarray:
    """Scores (higher = more normal) of rows in [-1, 1] for a :data:`REFERENCES` entry."""
    if name == "background pixels":
        return -np.sum(X <= -1.0 + 1e-6, axis=1).astype(np.float64)
    flow = _untrained_flow()
    pixels = torch.from_numpy((X.astype(np.float64) + 1.0) / 2.0)
    _, norms = log_prob_and_gradient_norm(flow.log_prob, pixels)
    return -norms.detach().numpy()


# ----------------------------------------------------------------------------- run
def detector(args, alpha: float) -> ApproximateMassFlowDetector:
    return ApproximateMassFlowDetector(
        alpha=alpha,
        input_shape=(1, 28, 28),
        n_scales=2,
        n_blocks=args.n_blocks,
        mid_channels=args.mid_channels,
        lr=args.lr,
        batch_size=args.batch_size,
        max_epochs=args.epochs,
        inference_batch_size=args.inference_batch_size,
        device=args.device,
        random_state=args.seed,
        verbose=args.verbose,
    )


def run(args) -> dict:
    X_train, X_id, ood = build_sets(args)
    results, fit_seconds, score_seconds, histories, bpd = {}, {}, {}, {}, {}
    for reference in REFERENCES:
        id_scores = reference_scores(reference, X_id)
        for (split, name), X_ood in ood.items():
            metrics = evaluate(id_scores, reference_scores(reference, X_ood), args.seed)
            results.setdefault(reference, {}).setdefault(split, {})[name] = metrics
    progress = RunProgress(sum(model in args.models for model in MODELS))
    for model, alpha in MODELS.items():
        if model not in args.models:
            continue
        progress.started(f"{model} flow", "MNIST", args.seed)
        det = detector(args, alpha)
        start = time.perf_counter()
        det.fit(X_train)
        fit_seconds[model] = time.perf_counter() - start
        print(f"{model}: fit {fit_seconds[model]:.0f} s", flush=True)
        history = det.history_
        histories[model] = {
            key: [float(v) for v in history[:, key]]
            for key in ("train_loss", "nll", "gradient_norm", "dur")
            if key in history[-1]
        }
        start = time.perf_counter()
        for label, (score_type, draws) in SCORES.items():
            draws = args.noise_draws if draws is None else draws
            det.set_params(score_type=score_type, n_dequantization_draws=draws)
            id_scores = det.score_samples(X_id)
            if score_type == "log_likelihood":
                bpd[model] = bits_per_dim(id_scores, X_id.shape[1])
            for (split, name), X_ood in ood.items():
                metrics = evaluate(id_scores, det.score_samples(X_ood), args.seed)
                results.setdefault(f"{model} {label}", {}).setdefault(split, {})[name] = metrics
        score_seconds[model] = time.perf_counter() - start
        print(f"{model}: scored in {score_seconds[model]:.0f} s", flush=True)
        progress.finished(
            f"{model} flow", "MNIST", args.seed, seconds=fit_seconds[model] + score_seconds[model]
        )
    # The training loops alone (skorch's per-epoch durations): fit also scores the training
    # set once for offset_, which costs the same for both flows.
    train_seconds = {model: float(np.sum(h["dur"])) for model, h in histories.items()}
    ratio = None
    if "penalised" in train_seconds and "vanilla" in train_seconds:
        ratio = train_seconds["penalised"] / train_seconds["vanilla"]
    return {
        "machine": machine(),
        "config": _config_text(args),
        "settings": {key: getattr(args, key) for key in _OVERRIDABLE},
        "results": results,
        "fit_seconds": fit_seconds,
        "train_loop_seconds": train_seconds,
        "score_seconds": score_seconds,
        "train_time_ratio_penalised_over_vanilla": ratio,
        "id_test_bits_per_dim_midpoint": bpd,
        "histories": histories,
        "paper": {"table1_auroc": PAPER_TABLE1, "table2": PAPER_TABLE2},
    }


def _config_text(args) -> str:
    return (
        f"{args.config}: {args.train_size} Fashion-MNIST training images, {args.epochs} epochs, "
        f"batch {args.batch_size}, lr {args.lr:g}, RealNVP 2 scales / {args.n_blocks} residual "
        f"blocks / {args.mid_channels} channels, {args.eval_size} evaluation images per set, "
        f"seed {args.seed}, device {args.device}, {args.noise_draws} noise draw(s) for 'mass noise'"
    )


# ----------------------------------------------------------------------------- report
def _cell(value, digits=3):
    return "" if value is None else f"{value:.{digits}f}"


def markdown(payload: dict) -> str:
    results = payload["results"]
    lines = ["# Fashion-MNIST -> MNIST OOD: approximate-mass flow", ""]
    lines += [machine_markdown(payload["machine"]), f"Configuration: {payload['config']}", ""]
    lines += [
        "Per-sample scores. The paper's published evaluation scored batches of 32 test images "
        "(one score per batch), so its numbers are not directly comparable; the 'groups of 32' "
        "column applies that batch-level protocol to our per-sample scores.",
        "",
        "## Table 1: AUROC of the approximate mass, Fashion-MNIST -> MNIST",
        "",
        "| training | ours (per sample) | ours (groups of 32) | paper |",
        "|---|---|---|---|",
    ]
    for model in MODELS:
        for suffix, how in (("mass", "midpoint"), ("mass noise", "noise-averaged")):
            key = f"{model} {suffix}"
            if key in results:
                metrics = results[key]["far"]["mnist"]
                lines.append(
                    f"| {model}, {how} | {_cell(metrics['auroc'])} | "
                    f"{_cell(metrics['auroc_groups_of_32'])} | {PAPER_TABLE1[model]} |"
                )
    for reference in REFERENCES:
        if reference in results:
            metrics = results[reference]["far"]["mnist"]
            lines.append(
                f"| no training: {reference} | {_cell(metrics['auroc'])} | "
                f"{_cell(metrics['auroc_groups_of_32'])} | |"
            )
    lines += ["", "Scores that need no training, on the same images:", ""]
    lines += [f"* '{name}': {text}." for name, text in REFERENCES.items() if name in results]
    if "penalised mass" in results:
        metrics = results["penalised mass"]["far"]["mnist"]
        lines += [
            "",
            "## Table 2: penalised flow, approximate mass, ID Fashion-MNIST",
            "",
            "| OOD | AUROC ours / paper | AUPR-In ours / paper | TNR@95%TPR ours / paper "
            "| balanced AUROC | AUROC groups of 32 |",
            "|---|---|---|---|---|---|",
        ]
        paper = PAPER_TABLE2["MNIST"]
        lines.append(
            f"| MNIST | {_cell(metrics['auroc'])} / {paper[0]} | {_cell(metrics['aupr_in'])} / "
            f"{paper[1]} | {_cell(metrics['tnr_at_95_tpr'])} / {paper[2]} | "
            f"{_cell(metrics['balanced_auroc'])} | {_cell(metrics['auroc_groups_of_32'])} |"
        )
        for name in ("EMNIST", "KMNIST"):
            paper = PAPER_TABLE2[name]
            lines.append(
                f"| {name} (not available offline) | - / {paper[0]} | - / {paper[1]} | "
                f"- / {paper[2]} | - | - |"
            )
    methods = list(results)
    for split in ("far", "near"):
        lines += ["", f"## {split} OOD, per-sample AUROC", ""]
        lines.append("| OOD set | " + " | ".join(methods) + " |")
        lines.append("|---" * (len(methods) + 1) + "|")
        for name in [*OOD_SETS, "mean"]:
            cells = []
            for method in methods:
                table = results[method][split]
                value = (
                    np.mean([m["auroc"] for m in table.values()])
                    if name == "mean"
                    else table[name]["auroc"]
                )
                cells.append(_cell(value))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "## Training cost and fit", ""]
    lines += [
        "| model | fit (s) | scoring (s) | ID test bits/dim (midpoint) |",
        "|---|---|---|---|",
    ]
    for model, seconds in payload["fit_seconds"].items():
        lines.append(
            f"| {model} | {seconds:.0f} | {payload['score_seconds'][model]:.0f} | "
            f"{_cell(payload['id_test_bits_per_dim_midpoint'].get(model))} |"
        )
    ratio = payload["train_time_ratio_penalised_over_vanilla"]
    if ratio is not None:
        lines += ["", f"Training time penalised / vanilla: {ratio:.2f} (target <= 2.5)."]
    history = payload["histories"].get("penalised", {})
    if "gradient_norm" in history:
        norms = ", ".join(f"{v:.3g}" for v in history["gradient_norm"])
        lines += ["", f"Penalised flow, mean training ||d log p/dx|| per epoch: {norms}."]
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- tabular
TABULAR_SCORES = {"AMFlow mass": "approximate_mass", "AMFlow LL": "log_likelihood"}


def tabular_flow_scores(X_train, X_test, seed: int, **params) -> dict:
    """Fit the tabular flow once and score ``X_test`` both ways.

    Returns ``{label: (score_samples, fit_seconds)}`` for the labels of
    :data:`TABULAR_SCORES`; ``params`` override the detector's defaults (the tabular
    RealNVP: 8 couplings, 256-wide MLPs, batch 256, 100 epochs, lr 1e-3, alpha 2).
    """
    det = ApproximateMassFlowDetector(random_state=seed, device="cpu", **params)
    start = time.perf_counter()
    det.fit(X_train)
    elapsed = time.perf_counter() - start
    rows = {}
    for label, score_type in TABULAR_SCORES.items():
        det.set_params(score_type=score_type)
        rows[label] = (det.score_samples(X_test), elapsed)
    return rows


def run_tabular(args) -> None:
    """``tabular.py``'s protocol (60/40 splits, StandardScaler on the train part) for the flow."""
    import torch
    from joblib import delayed
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from tabular import _load, _metrics, summarize

    params = {"max_epochs": args.epochs} if args.epochs_given else {}

    def one_seed(name, seed):
        torch.set_num_threads(1)
        X, y = _load(name)
        X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.4, random_state=seed)
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
        if np.all(y_test == 1) or np.all(y_test == -1):
            return {}
        scored = tabular_flow_scores(X_train, X_test, seed, **params)
        return {label: _metrics(y_test, s, t) for label, (s, t) in scored.items()}

    payload = {"machine": machine(), "params": params, "datasets": {}}
    lines = ["# Tabular benchmark: approximate-mass flow", "", machine_markdown(payload["machine"])]
    lines += ["| dataset | seeds | AMFlow mass ROC AUC | AMFlow LL ROC AUC |", "|---|---|---|---|"]
    progress = RunProgress(len(args.tabular) * args.seeds)
    for name in args.tabular:
        name = name if ":" in name else f"odds:{name}"
        jobs = [
            (("AMFlow", name, seed), delayed(one_seed)(name, seed)) for seed in range(args.seeds)
        ]
        per_seed = parallel_runs(jobs, n_jobs=args.n_jobs, progress=progress)
        summary = summarize([rows for rows in per_seed if rows])
        payload["datasets"][name] = summary
        mass, ll = (summary[label]["roc_auc_mean"] for label in TABULAR_SCORES)
        lines.append(f"| {name} | {args.seeds} | {mass:.3f} | {ll:.3f} |")
        print(lines[-1], flush=True)
    stem = args.output or "flow_tabular"
    write_json(stem, payload)
    write_markdown(stem, "\n".join(lines) + "\n")


# ----------------------------------------------------------------------------- main
_OVERRIDABLE = ("train_size", "epochs", "eval_size", "n_blocks", "mid_channels", "batch_size", "lr")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=sorted(CONFIGS), default="cpu")
    parser.add_argument("--train-size", type=int)
    parser.add_argument("--epochs", type=int)
    parser.add_argument("--eval-size", type=int)
    parser.add_argument("--n-blocks", type=int)
    parser.add_argument("--mid-channels", type=int)
    parser.add_argument("--batch-size", type=int)
    parser.add_argument("--lr", type=float)
    parser.add_argument("--inference-batch-size", type=int, default=500)
    parser.add_argument(
        "--noise-draws",
        type=int,
        default=1,
        help="n_dequantization_draws of the 'mass noise' score (the others use the midpoint)",
    )
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--output", default=None, help="result file stem")
    parser.add_argument(
        "--tabular", nargs="+", default=None, metavar="DATASET",
        help="instead: the flow alone on these tables with tabular.py's protocol",
    )  # fmt: skip
    parser.add_argument("--seeds", type=int, default=10, help="--tabular: seeds 0..n-1")
    parser.add_argument("--n-jobs", type=int, default=2, help="--tabular: parallel seeds")
    args = parser.parse_args()
    args.epochs_given = args.epochs is not None
    for key in _OVERRIDABLE:
        if getattr(args, key) is None:
            setattr(args, key, CONFIGS[args.config][key])
    if args.tabular:
        run_tabular(args)
        return
    payload = run(args)
    stem = args.output or f"flow_ood_{args.config}"
    write_results(stem, payload, markdown(payload))


if __name__ == "__main__":
    main()
