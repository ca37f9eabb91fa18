"""Tabular benchmark: DLSGAN and its baselines beside classical detectors, PyOD's protocol.

Protocol (PyOD's benchmark protocol): for each seed, ``train_test_split(X, y, test_size=0.4,
random_state=seed)``; a StandardScaler fitted on the training part; every detector trained on
the (contaminated) training part with the same seed; on the test part, ROC AUC, average
precision (outliers positive) and F1 with the threshold at the true contamination. Means over
the seeds are reported.

The GAN variants are fitted once per seed and scored twice (NLP and reconstruction):
``score_type`` only changes how a fitted model scores, not how it trains.

Other skood detectors join an existing result file with ``--add-to``: they run on the same
sets with the same seeds and split, and their rows are added beside the others.

Usage::

    python benchmarks/tabular.py                      # every set up to --max-rows, 10 seeds
    python benchmarks/tabular.py --datasets arrhythmia --seeds 3
    python benchmarks/tabular.py --add-to tabular --detectors Flow InvGAN --seeds 10

Two ``--add-to`` runs side by side each work on a copy of the result file (``cp
results/tabular.json results/tabular_a.json``, then ``--add-to tabular_a``); ``--merge tabular
--merge-from tabular_a tabular_b`` moves what they added back into it.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
import warnings

import numpy as np
from _common import (
    RESULTS,
    RunProgress,
    code_description,
    data_home,
    machine,
    machine_markdown,
    parallel_runs,
    write_json,
    write_markdown,
)
from joblib import delayed
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from sklearn.svm import OneClassSVM

from skood import DLSGANDetector
from skood.datasets import list_adbench, list_odds, load_adbench, load_odds
from skood.metrics import average_precision, f1_at_contamination, roc_auc

# ADBench sets that are the same data as an ODDS file: benchmarked once, from ODDS.
ADBENCH_DUPLICATES = {
    "breastw", "glass", "ionosphere", "letter", "lymphography", "mammography", "mnist", "musk",
    "optdigits", "pendigits", "pima", "satellite", "satimage-2", "shuttle", "smtp", "vertebral",
    "vowels",
}  # fmt: skip

# Reference measurements of the baselines with this protocol and 10 seeds, printed beside ours.
REFERENCE_ARRHYTHMIA = {
    "IsolationForest": 0.811,
    "OneClassSVM": 0.781,
    "HBOS": 0.822,
    "ECOD": 0.817,
    "AutoEncoder (PyOD)": 0.773,
}
GAN_VARIANTS = {"DLSGAN": "dlsgan", "MSEGAN": "msegan", "InfoGAN": "infogan"}


def _other_detector(label: str, seed: int):
    """A skood detector other than the GAN variants, and its (score_type, column) pairs."""
    if label == "Flow":
        from skood import ApproximateMassFlowDetector

        detector = ApproximateMassFlowDetector(random_state=seed, device="cpu")
        return detector, [("approximate_mass", "Flow AM"), ("log_likelihood", "Flow LL")]
    if label == "InvGAN":
        from skood import InvGANDetector

        return InvGANDetector(random_state=seed, device="cpu"), [(None, "InvGAN")]
    if label == "AE":
        from skood import AutoencoderDetector

        return AutoencoderDetector(random_state=seed, device="cpu"), [(None, "skood AE")]
    if label == "DLSGANx5":
        from skood import BaggingDetector

        # Five DLSGANs with default settings, seeds drawn from the split's seed, trained
        # jointly; rank combination (the default).
        ensemble = BaggingDetector(DLSGANDetector(device="cpu"), n_estimators=5, random_state=seed)
        return ensemble, [("nlp", "DLSGAN x5 NLP"), ("reconstruction", "DLSGAN x5 Rec")]
    if label == "DLSGANx10h":
        from skood import BaggingDetector

        # Ten DLSGANs with default settings, each on a random half of the features (drawn
        # without replacement per member), trained jointly: the ensemble setting with the
        # highest mean ROC AUC on validation rows of the 31 sets
        # (results/fit_speed_validation_dlsgan-ensemble.md).
        ensemble = BaggingDetector(
            DLSGANDetector(device="cpu"), n_estimators=10, max_features=0.5, random_state=seed
        )
        return ensemble, [("nlp", "DLSGAN x10 half NLP"), ("reconstruction", "DLSGAN x10 half Rec")]
    if label == "Flowx5":
        from skood import ApproximateMassFlowDetector, BaggingDetector

        # Five flows with default settings, trained jointly, as DLSGANx5.
        flow = ApproximateMassFlowDetector(device="cpu")
        ensemble = BaggingDetector(flow, n_estimators=5, random_state=seed)
        return ensemble, [("approximate_mass", "Flow x5 AM"), ("log_likelihood", "Flow x5 LL")]
    raise ValueError(f"unknown detector {label!r}")


DETECTOR_CHOICES = [
    *GAN_VARIANTS, "Flow", "InvGAN", "AE", "DLSGANx5", "DLSGANx10h", "Flowx5", "baselines"
]  # fmt: skip
_OTHER_COLUMNS = {
    "Flow AM": "Flow",
    "Flow LL": "Flow",
    "InvGAN": "InvGAN",
    "skood AE": "AE",
    "DLSGAN x5 NLP": "DLSGANx5",
    "DLSGAN x5 Rec": "DLSGANx5",
    "DLSGAN x10 half NLP": "DLSGANx10h",
    "DLSGAN x10 half Rec": "DLSGANx10h",
    "Flow x5 AM": "Flowx5",
    "Flow x5 LL": "Flowx5",
}


def _with_score_type(detector, score_type: str, X_train):
    """``detector`` scoring with ``score_type``; for an ensemble, a copy whose members score
    so, with the combination's scales taken again from their training scores.

    ``score_type`` does not change how a member trains, so this scores as the ensemble that
    fitting ``BaggingDetector(DLSGANDetector(score_type=...))`` (or a flow's) with the same
    seeds gives.
    """
    if not hasattr(detector, "estimators_"):
        return detector.set_params(score_type=score_type)
    ensemble = copy.deepcopy(detector)
    raw = []
    for member, features in zip(ensemble.estimators_, ensemble.estimators_features_, strict=True):
        member.set_params(score_type=score_type)
        raw.append(np.asarray(member.score_samples(X_train[:, features]), dtype=np.float64))
    ensemble._set_scales(raw)  # as its fit sets them
    return ensemble


def column_detector(column: str) -> str:
    """The ``--detectors`` choice that produces a result column (``"DLSGAN NLP"`` -> DLSGAN)."""
    label = column.rsplit(" ", 1)[0]
    if label in GAN_VARIANTS and column.endswith((" NLP", " Rec")):
        return label
    return _OTHER_COLUMNS.get(column, "baselines")


def evaluated_seeds(name: str, n_seeds: int) -> list[int]:
    """Seeds among ``0..n_seeds-1`` whose test part holds both classes (the others are skipped)."""
    _, y = _load(name)
    kept = []
    for seed in range(n_seeds):
        _, y_test = train_test_split(y, test_size=0.4, random_state=seed)
        if not (np.all(y_test == 1) or np.all(y_test == -1)):
            kept.append(seed)
    return kept


def available_datasets(max_rows: int) -> list[str]:
    home = data_home()
    names = [f"odds:{name}" for name in list_odds(home) if name != "smtp"]
    names += [
        f"adbench:{name}" for name in list_adbench(home) if name.lower() not in ADBENCH_DUPLICATES
    ]
    keep = []
    for name in names:
        X, _ = _load(name)
        if X.shape[0] <= max_rows:
            keep.append(name)
    return keep


def _load(name: str):
    source, _, bare = name.partition(":")
    if not bare:
        source, bare = "odds", source
    loader = load_odds if source == "odds" else load_adbench
    return loader(bare, data_home=data_home(), return_X_y=True)


def _pyod_detectors(seed: int) -> dict:
    detectors = {}
    try:
        from pyod.models.ecod import ECOD
        from pyod.models.hbos import HBOS
    except ImportError:
        return detectors
    detectors["HBOS"] = HBOS()
    detectors["ECOD"] = ECOD()
    try:
        from pyod.models.auto_encoder import AutoEncoder

        detectors["AutoEncoder (PyOD)"] = AutoEncoder(random_state=seed, verbose=0)
    except ImportError:
        pass
    return detectors


def _scores(detector, X_test) -> np.ndarray:
    # PyOD scores are higher = more abnormal; sklearn's and skood's higher = more normal.
    if hasattr(detector, "score_samples"):
        return detector.score_samples(X_test)
    return -detector.decision_function(X_test)


def _metrics(y_test, scores, elapsed) -> dict:
    return {
        "roc_auc": roc_auc(y_test, scores),
        "ap": average_precision(y_test, scores),
        "f1": f1_at_contamination(y_test, scores),
        "fit_s": elapsed,
    }


def run_seed(name: str, seed: int, gan_params: dict, chosen: list[str]) -> dict:
    """The chosen detectors on one split; returns ``{column: metrics}``."""
    import torch

    torch.set_num_threads(1)  # one process per seed; tiny MLPs gain nothing from threads
    X, y = _load(name)
    X_train, X_test, _, y_test = train_test_split(X, y, test_size=0.4, random_state=seed)
    scaler = StandardScaler().fit(X_train)
    X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    if np.all(y_test == 1) or np.all(y_test == -1):
        return {}
    rows = {}
    for label, variant in GAN_VARIANTS.items():
        if label not in chosen:
            continue
        detector = DLSGANDetector(variant=variant, random_state=seed, device="cpu", **gan_params)
        start = time.perf_counter()
        detector.fit(X_train)
        elapsed = time.perf_counter() - start
        for score_type, short in (("nlp", "NLP"), ("reconstruction", "Rec")):
            detector.set_params(score_type=score_type)
            rows[f"{label} {short}"] = _metrics(y_test, detector.score_samples(X_test), elapsed)
    for label in chosen:
        if label in GAN_VARIANTS or label == "baselines":
            continue
        detector, columns = _other_detector(label, seed)
        start = time.perf_counter()
        detector.fit(X_train)
        elapsed = time.perf_counter() - start
        for score_type, column in columns:
            scorer = detector
            if score_type is not None:
                scorer = _with_score_type(detector, score_type, X_train)
            rows[column] = _metrics(y_test, scorer.score_samples(X_test), elapsed)
    if "baselines" in chosen:
        others = {
            "IsolationForest": IsolationForest(random_state=seed),
            "OneClassSVM": OneClassSVM(gamma="auto"),
            **_pyod_detectors(seed),
        }
        for label, detector in others.items():
            start = time.perf_counter()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                detector.fit(X_train)
            elapsed = time.perf_counter() - start
            rows[label] = _metrics(y_test, _scores(detector, X_test), elapsed)
    return rows


def _n_seeds(name: str, args) -> int:
    """Seeds run on a set: ``--seeds``, or ``--large-seeds`` for sets beyond ``--large-rows``."""
    if args.large_rows is not None and _load(name)[0].shape[0] > args.large_rows:
        return min(args.seeds, args.large_seeds)
    return args.seeds


def _recorded_seeds(result: dict) -> list[int]:
    return list(result.get("seeds", range(result["n_seeds"])))


def _run_seeds(name: str, seeds, gan_params: dict, args, progress: RunProgress) -> list[dict]:
    """``run_seed`` for each seed, ``args.n_jobs`` processes at a time, in the order of
    ``seeds``; a progress line as each seed's results come back."""
    seeds = list(seeds)
    if not seeds:
        return []
    detectors = ", ".join(args.detectors)
    where = f"{args.n_jobs} processes" if args.n_jobs != 1 else "one process"
    print(f"{name}: {detectors}, seeds {seeds[0]}-{seeds[-1]}, {where}", flush=True)
    jobs = [
        ((detectors, name, seed), delayed(run_seed)(name, seed, gan_params, args.detectors))
        for seed in seeds
    ]
    return parallel_runs(jobs, n_jobs=args.n_jobs, progress=progress)


def summarize(per_seed: list[dict]) -> dict:
    summary: dict = {}
    for rows in per_seed:
        for detector, metrics in rows.items():
            entry = summary.setdefault(detector, {key: [] for key in metrics})
            for key, value in metrics.items():
                entry[key].append(float(value))
    return {
        detector: {
            **{f"{key}_mean": float(np.mean(values)) for key, values in entry.items()},
            **{f"{key}_std": float(np.std(values)) for key, values in entry.items()},
            "per_seed": entry,
        }
        for detector, entry in summary.items()
    }


def markdown(payload: dict) -> str:
    datasets = payload["datasets"]
    detectors: list[str] = []
    for result in datasets.values():
        for detector in result["detectors"]:
            if detector not in detectors:
                detectors.append(detector)
    lines = [
        "# Tabular benchmark",
        "",
        machine_markdown(payload["machine"]),
        f"Protocol: {payload['protocol']}",
        "",
    ]
    for added in payload["machine"].get("added", []):
        lines += [f"Columns added later, same sets, seeds and splits: `{added['command']}` "
                  f"({added['date']}, {code_description(added)}).", ""]  # fmt: skip
    for metric, title in (("roc_auc", "ROC AUC"), ("ap", "Average precision"), ("f1", "F1")):
        lines += [f"## {title} (mean over seeds)", ""]
        lines.append("| dataset | n x d | seeds | " + " | ".join(detectors) + " |")
        lines.append("|---" * (len(detectors) + 3) + "|")
        for name, result in datasets.items():
            cells = []
            values = {
                d: result["detectors"][d][f"{metric}_mean"]
                for d in detectors
                if d in result["detectors"]
            }
            best = max(values.values()) if values else None
            for detector in detectors:
                value = values.get(detector)
                if value is None:
                    cells.append("")
                else:
                    text = f"{value:.3f}"
                    cells.append(f"**{text}**" if value == best else text)
            shape = f"{result['n_samples']} x {result['n_features']}"
            lines.append(f"| {name} | {shape} | {result['n_seeds']} | " + " | ".join(cells) + " |")
        lines.append("")
    if "odds:arrhythmia" in datasets:
        ours = datasets["odds:arrhythmia"]["detectors"]
        lines += ["## Arrhythmia beside the reference measurements (ROC AUC)", ""]
        lines += ["| detector | ours | reference measurement (10 seeds) |", "|---|---|---|"]
        for detector in detectors:
            if detector in ours:
                ref = REFERENCE_ARRHYTHMIA.get(detector, "")
                lines.append(f"| {detector} | {ours[detector]['roc_auc_mean']:.3f} | {ref} |")
        lines.append("")
    lines += _win_summary(datasets)
    return "\n".join(lines) + "\n"


def _win_summary(datasets: dict) -> list[str]:
    lines = []
    baselines = ["IsolationForest", "OneClassSVM", "HBOS", "ECOD", "AutoEncoder (PyOD)"]
    for ours, others in (
        ("DLSGAN NLP", [*baselines, "MSEGAN NLP", "InfoGAN NLP", "DLSGAN Rec"]),
        ("DLSGAN x5 NLP", [*baselines, "DLSGAN NLP"]),
        ("DLSGAN x5 Rec", [*baselines, "DLSGAN Rec"]),
        ("DLSGAN x10 half NLP", [*baselines, "DLSGAN NLP", "DLSGAN x5 NLP"]),
        ("DLSGAN x10 half Rec", [*baselines, "DLSGAN Rec", "DLSGAN x5 Rec"]),
        ("Flow LL", baselines),
        ("Flow x5 LL", [*baselines, "Flow LL"]),
    ):
        found = []
        for baseline in others:
            wins = compared = 0
            for result in datasets.values():
                detectors = result["detectors"]
                if ours in detectors and baseline in detectors:
                    compared += 1
                    mine = detectors[ours]["roc_auc_mean"]
                    wins += mine > detectors[baseline]["roc_auc_mean"]
            if compared:
                found.append(f"- vs {baseline}: {wins} / {compared}")
        if found:
            lines += [f"## {ours} against each baseline (ROC AUC, sets won / sets compared)", ""]
            lines += [*found, ""]
    return lines + _mean_summary(datasets)


def _mean_summary(datasets: dict) -> list[str]:
    """Each column's ROC AUC and fit time over the sets it ran on."""
    columns: dict[str, list[tuple[float, float]]] = {}
    for result in datasets.values():
        for detector, metrics in result["detectors"].items():
            entry = (metrics["roc_auc_mean"], metrics.get("fit_s_mean", float("nan")))
            columns.setdefault(detector, []).append(entry)
    lines = ["## Mean over the sets", ""]
    lines += ["| detector | sets | mean ROC AUC | median fit (s) |", "|---|---|---|---|"]
    for detector, entries in columns.items():
        aucs, fits = zip(*entries, strict=True)
        lines.append(
            f"| {detector} | {len(entries)} | {np.mean(aucs):.4f} | {np.median(fits):.2f} |"
        )
    return [*lines, ""]


def add_to(args) -> None:
    """Run ``args.detectors`` on the sets and seeds of an existing result file; add columns."""
    path = RESULTS / f"{args.add_to}.json"
    payload = json.loads(path.read_text())
    names = args.datasets or list(payload["datasets"])
    names = [name if ":" in name else f"odds:{name}" for name in names]
    payload["machine"].setdefault("added", []).append(machine())
    gan_params = payload.get("gan_params", {})
    seeds_of = {name: _recorded_seeds(payload["datasets"][name]) for name in names}
    if args.only_seeds is not None:
        seeds_of = {
            name: [seed for seed in seeds if seed in args.only_seeds]
            for name, seeds in seeds_of.items()
        }
    progress = RunProgress(sum(map(len, seeds_of.values())))
    for name in names:
        result = payload["datasets"][name]
        start = time.perf_counter()
        per_seed = _run_seeds(name, seeds_of[name], gan_params, args, progress)
        added = summarize([rows for rows in per_seed if rows])
        if args.only_seeds is not None:  # part of the seeds: --merge joins the parts
            ran = [seed for seed, rows in zip(seeds_of[name], per_seed, strict=True) if rows]
            for metrics in added.values():
                metrics["seeds"] = ran
        result["detectors"].update(added)
        # Which entry of machine["added"] made each column: its commit and command.
        run = len(payload["machine"]["added"]) - 1
        result.setdefault("recorded_by", {}).update({column: f"added/{run}" for column in added})
        line = ", ".join(f"{d} {m['roc_auc_mean']:.3f}" for d, m in added.items())
        write_json(args.add_to, payload)
        write_markdown(args.add_to, markdown(payload))
        # Printed after the files are written: a run stopped after this line keeps the dataset.
        print(f"{name} ({time.perf_counter() - start:.0f} s): {line}", flush=True)


def copy_cells(payload: dict, copy_: dict) -> tuple[list[int], list[tuple[str, str, int]]]:
    """What ``--add-to`` runs wrote into ``copy_``, a copy of ``payload``, after it was copied:
    the indices of those runs in the copy's ``machine["added"]`` (runs the file does not have),
    and the cells they wrote, as (dataset, column, run index)."""
    known = payload["machine"].get("added", [])
    own = [i for i, run in enumerate(copy_["machine"].get("added", [])) if run not in known]
    cells = [
        (name, column, int(where.partition("/")[2]))
        for name, result in copy_["datasets"].items()
        for column, where in result.get("recorded_by", {}).items()
        if where.startswith("added/") and int(where.partition("/")[2]) in own
    ]
    return own, cells


def _joined_seeds(first: dict, second: dict) -> dict:
    """One column's summary from two ``--only-seeds`` parts, per seed in seed order."""
    seeds = [*first["seeds"], *second["seeds"]]
    order = np.argsort(seeds, kind="stable")
    per_seed = {
        key: [[*first["per_seed"][key], *second["per_seed"][key]][i] for i in order]
        for key in first["per_seed"]
    }
    joined = summarize([{"column": {key: values[i] for key, values in per_seed.items()}}
                        for i in range(len(seeds))])["column"]  # fmt: skip
    joined["seeds"] = [seeds[i] for i in order]
    return joined


def merge(args) -> None:
    """Move the columns that ``--add-to`` runs wrote into copies of a result file (runs side
    by side, one copy each) into the file itself, with the run that made each.

    Only what each copy's own runs added is taken (its ``recorded_by`` entries pointing at
    runs the file does not have); the run's ``machine`` entry comes along, so every column
    still names its commit, command and machine.
    """
    path = RESULTS / f"{args.merge}.json"
    payload = json.loads(path.read_text())
    for stem in args.merge_from:
        copy_ = json.loads((RESULTS / f"{stem}.json").read_text())
        own, cells = copy_cells(payload, copy_)
        added = payload["machine"].setdefault("added", [])
        new_runs = {}  # index in the copy -> index in the file
        for index in own:
            added.append(copy_["machine"]["added"][index])
            new_runs[index] = len(added) - 1
        moved = []
        for name, column, run in cells:
            result = copy_["datasets"][name]
            target = payload["datasets"][name]
            entry = result["detectors"][column]
            earlier = target["detectors"].get(column, {})
            if "seeds" in entry and "seeds" in earlier:  # parts of one column's seeds
                entry = _joined_seeds(earlier, entry)
                run_names = [*earlier.get("runs", []), f"added/{new_runs[run]}"]
            elif "seeds" in entry:
                run_names = [f"added/{new_runs[run]}"]
            target["detectors"][column] = entry
            if "seeds" in entry:
                entry["runs"] = run_names
                if len(entry["seeds"]) == len(_recorded_seeds(target)):
                    del entry["seeds"]  # whole again
            target.setdefault("recorded_by", {})[column] = f"added/{new_runs[run]}"
            moved.append(f"{name} {column}")
        print(f"{stem}: {len(moved)} cells moved in: {', '.join(moved) or 'none'}")
    write_json(args.merge, payload)
    write_markdown(args.merge, markdown(payload))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--datasets", nargs="*", help="e.g. arrhythmia odds:wbc adbench:yeast")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--large-rows",
        type=int,
        default=None,
        help="sets with more rows than this get --large-seeds seeds",
    )
    parser.add_argument("--large-seeds", type=int, default=3)
    parser.add_argument(
        "--resume", action="store_true", help="keep the datasets already in the result file"
    )
    parser.add_argument("--max-rows", type=int, default=12000)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--output", default="tabular", help="result file stem")
    parser.add_argument(
        "--detectors", nargs="+", choices=DETECTOR_CHOICES,
        default=[*GAN_VARIANTS, "baselines"],
        help="which detectors to run ('baselines': IsolationForest, OneClassSVM, PyOD's)",
    )  # fmt: skip
    parser.add_argument(
        "--add-to", default=None, metavar="STEM",
        help="add the chosen detectors to this result file, on its sets and seeds",
    )  # fmt: skip
    parser.add_argument(
        "--gan-param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a DLSGANDetector parameter (all variants)",
    )
    parser.add_argument(
        "--only-seeds", type=int, nargs="+", default=None, metavar="SEED",
        help="with --add-to: run only these of each set's seeds (--merge joins the parts)",
    )  # fmt: skip
    parser.add_argument(
        "--merge", default=None, metavar="STEM",
        help="move into this result file the columns --add-to runs added to copies of it",
    )  # fmt: skip
    parser.add_argument(
        "--merge-from", nargs="+", default=[], metavar="STEM", help="the copies, for --merge"
    )
    args = parser.parse_args()
    if args.merge:
        merge(args)
        return
    gan_params = {}
    for item in args.gan_param:
        key, _, value = item.partition("=")
        gan_params[key] = eval(value, {})  # numbers and tuples from the command line
    if args.add_to:
        add_to(args)
        return
    names = args.datasets or available_datasets(args.max_rows)
    names = [name if ":" in name else f"odds:{name}" for name in names]
    payload = {
        "machine": machine(),
        "protocol": (
            "train_test_split(test_size=0.4, random_state=seed) for seeds 0..n-1; "
            "StandardScaler fitted on the train part; detectors trained on the contaminated "
            "train part; ROC AUC, average precision (outliers positive), F1 at the true "
            "test contamination."
        ),
        "gan_params": gan_params,
        "datasets": {},
    }
    previous = RESULTS / f"{args.output}.json"
    if args.resume and previous.is_file():
        earlier = json.loads(previous.read_text())
        if earlier.get("gan_params") == gan_params:
            payload["datasets"] = earlier["datasets"]
            payload["machine"]["command"] += f" (resumed; kept {len(earlier['datasets'])} sets)"
    names = [name for name in names if name not in payload["datasets"]]
    n_seeds_of = {name: _n_seeds(name, args) for name in names}
    progress = RunProgress(sum(n_seeds_of.values()))
    for name in names:
        X, y = _load(name)
        n_seeds = n_seeds_of[name]
        start = time.perf_counter()
        per_seed = _run_seeds(name, range(n_seeds), gan_params, args, progress)
        seeds = [seed for seed, rows in enumerate(per_seed) if rows]
        per_seed = [rows for rows in per_seed if rows]
        payload["datasets"][name] = {
            "n_samples": int(X.shape[0]),
            "n_features": int(X.shape[1]),
            "outlier_fraction": float(np.mean(y == -1)),
            "n_seeds": len(per_seed),
            "seeds": seeds,
            "wall_s": time.perf_counter() - start,
            "detectors": summarize(per_seed),
        }
        payload["datasets"][name]["recorded_by"] = dict.fromkeys(
            payload["datasets"][name]["detectors"], "machine"
        )
        result = payload["datasets"][name]["detectors"]
        line = ", ".join(f"{d} {m['roc_auc_mean']:.3f}" for d, m in result.items())
        write_json(args.output, payload)
        write_markdown(args.output, markdown(payload))
        print(f"{name} ({time.perf_counter() - start:.0f} s): {line}", flush=True)


if __name__ == "__main__":
    main()
