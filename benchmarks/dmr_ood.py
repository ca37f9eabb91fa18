"""DMR beside the classifier post-hoc scores and DLSGAN: MNIST digits (and a labelled table) as ID.

Method references: dmr.md and baselines.md. The DMR paper's own setting (CIFAR-10/100 with a
pretrained WideResNet-40-2, StyleGAN-XL and SVHN/Textures/LSUN/Tiny-ImageNet/Places/Gaussian OOD)
cannot be run here: **CIFAR and those OOD sets are not available offline**. The paper's averages
are printed only as context; they are not comparable with the rows measured here.

Images (``--setting images``). In-distribution: MNIST digits with their labels; the detectors train
on ``--train-size`` images of MNIST's training split and are evaluated on ``--eval-size`` images of
its test split. OOD, as in ``mnist_ood.py``: Fashion-MNIST (test split) and the ten MNIST-C-style
corruptions of ``skood.datasets.corruptions`` applied to the evaluation digits; **far** OOD is the
OOD image, **near** OOD is ``0.1 * ood + 0.9 * id``. Pixels in [-1, 1].

One classifier (``PostHocDetector``, the small CNN) is trained and shared: MSP, MaxLogit, Energy,
Entropy, ReAct + Energy (p = 0.9 of the training activations), ODIN (T = 1000, eps = 0.002),
Mahalanobis (no input perturbation), ViM (D = half the 128 features) and KL-Matching all score
with it. One ``DLSGANDetector`` is trained on the same digits; its NLP score is a row of the table,
and it is the encoder/generator of the three DMR rows, which adopt the same frozen classifier:
DMR (MLM + DMR, k = 5, lambda ~ U(1, 3)), the MLM-only ablation and the single-latent DMR-only
ablation. Rejection heads train 10 epochs with SGD + cosine on the training digits and as many
synthetic outliers (augmented afresh every epoch unless ``--no-augment``).

Table (``--setting tabular``): scikit-learn's bundled ``load_digits`` (1,797 rows of 8 x 8 = 64
pixel counts, 10 classes) treated as a table. For each split seed, 4 digits drawn at random are
held out as OOD; the other 6 are ID, 70 % of their rows train and 30 % are the ID evaluation set.
OOD sets: the held-out digits, and uniform noise over the pixel range. Same methods, MLP networks.

Metrics: AUROC (OOD positive) and AUPR-In (ID positive, the DMR tables' "AUPR"), x 100.

Configurations:

* ``--config cpu``: 10,000 training digits for the classifier and DMR, 6,000 for DLSGAN (latent
  64, 3 epochs), classifier 5 epochs, 1,000 evaluation digits per set. About an hour on 2 cores.
* ``--config gpu``: all 60,000 training digits, DLSGAN latent 256 for 4 epochs, classifier 10
  epochs, all 10,000 test digits per set. About 8 minutes on one H100.

Usage::

    python benchmarks/dmr_ood.py --config cpu
    python benchmarks/dmr_ood.py --config gpu --device cuda
    python benchmarks/dmr_ood.py --setting tabular --config cpu
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from _common import (
    RESULTS,
    RunProgress,
    data_home,
    machine,
    machine_markdown,
    pyplot,
    write_results,
)
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from skood import DLSGANDetector
from skood.datasets import load_fashion_mnist, load_mnist
from skood.datasets.corruptions import CORRUPTIONS, blend, corrupt
from skood.dmr import DMRDetector
from skood.metrics import average_precision, roc_auc
from skood.posthoc import PostHocDetector

POSTHOC = {
    "MSP": {"score_type": "msp"},
    "MaxLogit": {"score_type": "maxlogit"},
    "Energy": {"score_type": "energy"},
    "Entropy": {"score_type": "entropy"},
    "ReAct+Energy": {"score_type": "react"},
    "ODIN": {"score_type": "odin"},
    "Mahalanobis": {"score_type": "mahalanobis"},
    "ViM": {"score_type": "vim"},
    "KL-Matching": {"score_type": "kl_matching"},
}
DMR_VARIANTS = {
    "DMR": {"synthesis": "mlm+dmr"},
    "MLM only": {"synthesis": "mlm"},
    "DMR only": {"synthesis": "dmr"},
}
# The DMR paper's average AUROC / AUPR-In over its six OOD sets (results.md section 4): Table 1
# (CIFAR-10), Table 4 (CIFAR-100) and the ablation of Table 3. WideResNet-40-2, StyleGAN-XL.
PAPER_CIFAR = {
    "MSP": {"CIFAR-10": (90.57, 88.74), "CIFAR-100": (78.56, 78.25)},
    "MaxLogit": {"CIFAR-10": (88.11, 87.34), "CIFAR-100": (81.40, 80.79)},
    "Energy": {"CIFAR-10": (87.66, 86.99), "CIFAR-100": (71.42, 73.74)},
    "Entropy": {"CIFAR-10": (90.96, 89.54), "CIFAR-100": (82.77, 82.28)},
    "ODIN": {"CIFAR-10": (89.45, 88.13), "CIFAR-100": (76.89, 76.87)},
    "Mahalanobis": {"CIFAR-10": (92.18, 93.06), "CIFAR-100": (74.56, 76.40)},
    "ViM": {"CIFAR-10": (94.09, 94.96), "CIFAR-100": (84.78, 84.61)},
    "KL-Matching": {"CIFAR-10": (77.11, 81.30), "CIFAR-100": (74.86, 79.03)},
    "DMR": {"CIFAR-10": (97.67, 98.09), "CIFAR-100": (92.50, 93.59)},
    "MLM only": {"CIFAR-10": (95.27, 96.26), "CIFAR-100": (89.80, 92.52)},
    "DMR only": {"CIFAR-10": (97.65, 98.01), "CIFAR-100": (91.80, 92.81)},
}
# The DLSGAN follow-up's MNIST AUROC x 100 (results.md section 1.3), in OOD_SETS order: its
# protocol differs (7 folds of MNIST train + test, released MNIST-C arrays), so context only.
PAPER_MNIST = {
    "DLSGAN NLP": {
        "near": [50.68, 93.47, 66.60, 85.13, 100.00, 99.44, 70.81, 72.04, 90.99, 87.58, 99.85],
        "far": [94.97, 100.00, 99.89, 100.00, 100.00, 100.00, 99.54, 99.41, 99.89, 100.00, 100.00],
    },
    "ReAct+Energy": {  # E+R with t = 1, p = 0.90 (threshold from the ID evaluation fold)
        "near": [50.98, 51.00, 51.85, 53.05, 51.65, 53.74, 50.54, 50.29, 50.58, 54.54, 55.37],
        "far": [71.23, 83.55, 86.73, 86.59, 92.86, 99.65, 64.48, 63.51, 71.01, 89.76, 97.06],
    },
}
OOD_SETS = [*CORRUPTIONS, "fashion_mnist"]
CONFIGS = {
    "cpu": {
        "train_size": 10000,
        "gan_train_size": 6000,
        "eval_size": 1000,
        "classifier_epochs": 5,
        "gan_epochs": 3,
        "dmr_epochs": 10,
        "latent_dim": 64,
    },
    "gpu": {
        "train_size": 60000,
        "gan_train_size": 60000,
        "eval_size": 10000,
        "classifier_epochs": 10,
        "gan_epochs": 4,
        "dmr_epochs": 10,
        "latent_dim": 256,
    },
}


# ----------------------------------------------------------------------------- data
def image_sets(args, seed: int):
    """Training digits and labels, ID evaluation digits and labels, {(split, name): OOD rows}."""
    home = data_home()
    train = load_mnist(subset="train", data_home=home, scale=None)
    test = load_mnist(subset="test", data_home=home, scale=None)
    fashion = load_fashion_mnist(subset="test", data_home=home, scale=None).images
    rng = np.random.RandomState(seed)
    rows = np.sort(rng.choice(len(train.images), args.train_size, replace=False))
    evaluation = np.sort(rng.choice(len(test.images), args.eval_size, replace=False))

    def scaled(images):
        return (images.astype(np.float32) / 127.5 - 1.0).reshape(len(images), -1)

    id_images = test.images[evaluation]
    ood = {}
    for index, name in enumerate(OOD_SETS):
        if name == "fashion_mnist":
            far = fashion[evaluation]
        else:
            far = corrupt(id_images, name, random_state=1000 * seed + index)
        ood[("far", name)] = scaled(far)
        ood[("near", name)] = scaled(blend(far, id_images))
    X_train, y_train = scaled(train.images[rows]), train.target[rows]
    return X_train, y_train, scaled(id_images), test.target[evaluation], ood


def tabular_sets(seed: int):
    """load_digits with 4 random digits held out as OOD, plus uniform noise."""
    X, y = load_digits(return_X_y=True)
    rng = np.random.RandomState(seed)
    held_out = np.sort(rng.permutation(10)[:4])
    inside = ~np.isin(y, held_out)
    X_train, X_id, y_train, _ = train_test_split(
        X[inside], y[inside], test_size=0.3, random_state=seed, stratify=y[inside]
    )
    noise = rng.uniform(X.min(), X.max(), size=(len(X_id), X.shape[1]))
    ood = {("far", "held-out digits"): X[~inside], ("far", "uniform noise"): noise}
    return X_train, y_train, X_id, ood, held_out.tolist()


# ----------------------------------------------------------------------------- methods
def evaluate(score, X_id, ood: dict, label: str = "") -> dict:
    id_scores = score(X_id)
    results = {}
    for (split, name), X_ood in ood.items():
        scores = np.r_[id_scores, score(X_ood)]
        labels = np.r_[np.ones(len(X_id)), -np.ones(len(X_ood))]
        results.setdefault(split, {})[name] = {
            "auroc": 100 * roc_auc(labels, scores),
            "aupr_in": 100 * average_precision(labels, scores, positive="inlier"),
        }
    # Progress with the numbers, so that a run stopped early still leaves them in its log.
    means = ", ".join(f"{split} {mean_over(results, split, 'auroc'):.2f}" for split in results)
    print(f"    {label}: mean AUROC {means}", flush=True)
    return results


def n_runs() -> int:
    """Runs of :func:`run_methods`: the post-hoc classifier, DLSGAN, each DMR variant."""
    return 2 + len(DMR_VARIANTS)


def run_methods(
    X_train,
    y_train,
    X_id,
    ood,
    *,
    input_shape,
    args,
    settings: dict,
    seed: int,
    where: str,
    progress: RunProgress,
):
    """Fit every method once on (X_train, y_train); evaluate on X_id against every OOD set.

    Returns the metrics per method, the fit times, the post-hoc detector (its classifier) and
    ten synthetic outliers per DMR variant. ``where`` names the data in the progress lines.
    """
    results, timings, synthetic = {}, {}, {}
    image = input_shape is not None
    progress.started("PostHoc classifier", where, seed)
    start = time.perf_counter()
    posthoc = PostHocDetector(
        input_shape=input_shape,
        max_epochs=settings["classifier_epochs"],
        device=args.device,
        random_state=seed,
        verbose=args.verbose,
    ).fit(X_train, y_train)
    timings["classifier"] = time.perf_counter() - start
    for name, params in POSTHOC.items():
        posthoc.set_params(**params)
        results[name] = evaluate(posthoc.score_samples, X_id, ood, name)
    print(f"  post-hoc scores done ({timings['classifier']:.0f} s to train)", flush=True)
    progress.finished("PostHoc classifier", where, seed, seconds=timings["classifier"])

    gan_rows = X_train[: settings["gan_train_size"]]
    gan_options = {"input_shape": input_shape, "max_epochs": settings["gan_epochs"]}
    if image:
        gan_options["latent_dim"] = settings["latent_dim"]
    progress.started("DLSGAN", where, seed)
    start = time.perf_counter()
    gan = DLSGANDetector(
        device=args.device, random_state=seed, verbose=args.verbose, **gan_options
    ).fit(gan_rows)
    timings["DLSGAN"] = time.perf_counter() - start
    results["DLSGAN NLP"] = evaluate(gan.score_samples, X_id, ood, "DLSGAN NLP")
    print(f"  DLSGAN done ({timings['DLSGAN']:.0f} s)", flush=True)
    progress.finished("DLSGAN", where, seed, seconds=timings["DLSGAN"])

    # An adopted classifier takes the indices of its logits as labels.
    y_indices = np.searchsorted(posthoc.classes_, y_train)
    for name, params in DMR_VARIANTS.items():
        progress.started(name, where, seed)
        start = time.perf_counter()
        detector = DMRDetector(
            generator=gan,
            classifier=posthoc.net_.module_,
            input_shape=input_shape,
            # The adopted classifier was trained on standardized tables: standardize the same.
            standardize=not image,
            max_epochs=settings["dmr_epochs"],
            augment_ood=image and not args.no_augment,
            device=args.device,
            random_state=seed,
            verbose=args.verbose,
            **params,
        ).fit(X_train, y_indices)
        timings[name] = time.perf_counter() - start
        results[name] = evaluate(detector.score_samples, X_id, ood, name)
        synthetic[name] = detector.synthesize(10, random_state=0)
        print(f"  {name} done ({timings[name]:.0f} s)", flush=True)
        progress.finished(name, where, seed, seconds=timings[name])
    return results, timings, posthoc, synthetic


def mean_over(results: dict, split: str, metric: str) -> float:
    return float(np.mean([cell[metric] for cell in results[split].values()]))


# ----------------------------------------------------------------------------- reports
def save_synthetic_grid(real, synthetic: dict, stem: str) -> None:
    plt = pyplot()
    if plt is None:
        return
    from skood.plotting import plot_image_grid

    rows = {"training digits": real[:10], **{f"{k} synthetic": v for k, v in synthetic.items()}}
    figure = plot_image_grid(rows, image_shape=(1, 28, 28), cell_size=1.1)
    figure.savefig(RESULTS / f"{stem}_synthetic.png", dpi=70)
    plt.close(figure)


def verdict(auroc: dict, what: str = "mean AUROC") -> str:
    """Whether DMR beats MSP and Energy on ``auroc`` (method -> AUROC), in words."""
    dmr = auroc["DMR"]
    others = {name: auroc[name] for name in ("MSP", "Energy")}
    above = all(dmr > value for value in others.values())
    compared = ", ".join(f"{name} {value:.2f}" for name, value in others.items())
    word = "above" if above else "NOT above"
    return f"DMR {what} {dmr:.2f} is {word} MSP and Energy ({compared})."


def table(results: dict, split: str, sets: list[str], paper: dict | None) -> list[str]:
    methods = list(results)
    lines = ["| method | " + " | ".join(sets) + " | mean AUROC | mean AUPR-In |"]
    lines.append("|---" * (len(sets) + 3) + "|")
    for method in methods:
        cells = []
        for index, name in enumerate(sets):
            ours = results[method][split][name]["auroc"]
            reference = (paper or {}).get(method, {}).get(split)
            cells.append(f"{ours:.2f} / {reference[index]:.2f}" if reference else f"{ours:.2f}")
        auroc = mean_over(results[method], split, "auroc")
        aupr = mean_over(results[method], split, "aupr_in")
        lines.append(f"| {method} | " + " | ".join(cells) + f" | {auroc:.2f} | {aupr:.2f} |")
    return lines


def markdown(payload: dict) -> str:
    lines = ["# DMR and classifier post-hoc OOD scores (AUROC x 100)", ""]
    lines += [machine_markdown(payload["machine"]), ""]
    if "images" in payload:
        block = payload["images"]
        lines += [f"## MNIST digits as ID ({block['config']})", ""]
        lines += [f"Classifier accuracy on the ID evaluation digits: {block['accuracy']:.4f}.", ""]
        for split in ("far", "near"):
            lines += [f"### {split} OOD", ""]
            lines += table(block["results"], split, OOD_SETS, PAPER_MNIST)
            lines += ["", verdict(block["mean_auroc"][split]), ""]
        lines += [
            "Cells with two numbers: ours / the DLSGAN follow-up paper (different protocol: 7 "
            "folds, released MNIST-C arrays, KMNIST not available here), context only.",
            "",
            f"Fit times (s): {block['timings']}",
            "",
        ]
    if "tabular" in payload:
        block = payload["tabular"]
        lines += [f"## load_digits as a table ({block['config']})", ""]
        sets = list(next(iter(block["mean"].values()))["far"])
        lines += table(block["mean"], "far", sets, None)
        lines += ["", verdict(block["mean_auroc"])]
        for name in sets:
            per_set = {method: cell["far"][name]["auroc"] for method, cell in block["mean"].items()}
            lines += ["", verdict(per_set, f"AUROC on {name}")]
        lines.append("")
        lines += [f"Held-out digits per split: {block['held_out']}", ""]
    lines += ["## The paper's CIFAR averages (context only; not run here)", ""]
    lines += [
        "CIFAR-10/100 and the paper's OOD sets are not available offline. Average AUROC / AUPR-In "
        "over SVHN, Textures, LSUN-crop, Tiny-ImageNet, Places-365 and Gaussian noise, "
        "WideResNet-40-2:",
        "",
        "| method | CIFAR-10 | CIFAR-100 |",
        "|---|---|---|",
    ]
    for method, values in PAPER_CIFAR.items():
        c10, c100 = values["CIFAR-10"], values["CIFAR-100"]
        lines.append(f"| {method} | {c10[0]:.2f} / {c10[1]:.2f} | {c100[0]:.2f} / {c100[1]:.2f} |")
    lines.append("")
    return "\n".join(lines)


# ----------------------------------------------------------------------------- main
def run_images(args, settings: dict, stem: str, progress: RunProgress) -> dict:
    X_train, y_train, X_id, y_id, ood = image_sets(args, args.seed)
    results, timings, posthoc, synthetic = run_methods(
        X_train, y_train, X_id, ood, input_shape=(1, 28, 28), args=args, settings=settings,
        seed=args.seed, where="MNIST", progress=progress,
    )  # fmt: skip
    accuracy = float(np.mean(posthoc.predict_class(X_id) == y_id))
    save_synthetic_grid(X_train, synthetic, stem)
    mean_auroc = {
        split: {method: mean_over(results[method], split, "auroc") for method in results}
        for split in ("far", "near")
    }
    return {
        "config": (
            f"{args.config}: {args.train_size} training digits ({settings['gan_train_size']} for "
            f"DLSGAN, latent {settings['latent_dim']}, {settings['gan_epochs']} epochs), "
            f"classifier {settings['classifier_epochs']} epochs, DMR heads "
            f"{settings['dmr_epochs']} epochs{' without augmentation' if args.no_augment else ''}"
            f", {args.eval_size} evaluation digits per set, seed {args.seed}, device {args.device}"
        ),
        "accuracy": accuracy,
        "results": results,
        "mean_auroc": mean_auroc,
        "timings": {key: round(value, 1) for key, value in timings.items()},
    }


def run_tabular(args, settings: dict, progress: RunProgress) -> dict:
    per_split, held_out = [], []
    for split_seed in range(args.tabular_splits):
        X_train, y_train, X_id, ood, digits = tabular_sets(split_seed)
        print(f"tabular split {split_seed}: OOD digits {digits}", flush=True)
        epochs = args.tabular_epochs
        tab = {**settings, "gan_train_size": len(X_train), "gan_epochs": epochs,
               "classifier_epochs": epochs}  # fmt: skip
        results, _, _, _ = run_methods(
            X_train, y_train, X_id, ood, input_shape=None, args=args, settings=tab,
            seed=split_seed, where=f"digit tables, split {split_seed}", progress=progress,
        )  # fmt: skip
        per_split.append(results)
        held_out.append(digits)
    methods = list(per_split[0])
    sets = list(per_split[0][methods[0]]["far"])
    mean = {
        method: {
            "far": {
                name: {
                    metric: float(np.mean([r[method]["far"][name][metric] for r in per_split]))
                    for metric in ("auroc", "aupr_in")
                }
                for name in sets
            }
        }
        for method in methods
    }
    return {
        "config": (
            f"{args.tabular_splits} split seeds, 6 ID digits (70 % train / 30 % evaluation), "
            f"classifier and DLSGAN {args.tabular_epochs} epochs (default sizes), DMR heads "
            f"{settings['dmr_epochs']} epochs, device {args.device}"
        ),
        "per_split": per_split,
        "mean": mean,
        "mean_auroc": {method: mean_over(mean[method], "far", "auroc") for method in methods},
        "held_out": held_out,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", choices=list(CONFIGS), default="cpu")
    parser.add_argument("--setting", choices=["images", "tabular", "both"], default="both")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--seed", type=int, default=0)
    for name in CONFIGS["cpu"]:
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=None)
    parser.add_argument("--tabular-splits", type=int, default=5)
    parser.add_argument("--tabular-epochs", type=int, default=30)
    parser.add_argument("--no-augment", action="store_true", help="no augmentation of outliers")
    parser.add_argument("--verbose", type=int, default=0)
    parser.add_argument("--output", default=None)
    args = parser.parse_args()
    settings = {
        name: getattr(args, name) if getattr(args, name) is not None else value
        for name, value in CONFIGS[args.config].items()
    }
    args.train_size, args.eval_size = settings["train_size"], settings["eval_size"]
    settings["gan_train_size"] = min(settings["gan_train_size"], settings["train_size"])
    stem = args.output or f"dmr_ood_{args.config}"
    payload = {"machine": machine()}
    images, tabular = args.setting in ("images", "both"), args.setting in ("tabular", "both")
    progress = RunProgress(n_runs() * (images + tabular * args.tabular_splits))
    if images:
        print("MNIST digits as ID", flush=True)
        payload["images"] = run_images(args, settings, stem, progress)
    if tabular:
        payload["tabular"] = run_tabular(args, settings, progress)
    write_results(stem, payload, markdown(payload))


if __name__ == "__main__":
    main()
