"""Training speed: image throughput against the committed step, the FLOP/s a step reaches, and
the tabular defaults chosen on validation rows.

Each part writes its own result file:

``images``
    DLSGAN's small convolutional networks on MNIST digits, batch 32, ``--threads`` threads:
    images per second of whole ``fit`` calls, for the step of ``--baseline`` (a commit, unpacked
    from git into a temporary folder and run in its own process) and for today's step under
    several settings, alternating, in one run. Beside each: the FLOP of one training step
    (counted by ``torch.utils.flop_counter``) and the FLOP/s that makes, against the peak of a
    large matrix product measured on the same machine, threads and dtype.
``table-step``
    DLSGAN's step on a table: milliseconds and FLOP per step by batch size and Adam
    implementation, beside PyOD's AutoEncoder and the one-thread matmul peak.
``optimizers``
    Every detector that trains networks, whole fits with PyTorch's for-loop Adam (its CPU
    default) against foreach Adam, alternating: time and whether the scores are identical.
``image-quality``
    The image speed settings against the paper's step on validation images: MNIST training
    digits held out from training against Fashion-MNIST training images (the evaluation sets
    of ``mnist_ood.py`` are test splits, untouched here).
``validation``
    DLSGAN or flow (``--detector``) settings compared on validation rows only: for each set
    and seed of the tabular protocol, the training part is split again (``--fraction`` of its
    rows, stratified) and the detector is fitted on the rest and scored on those rows. Test
    parts are never used; this is where the tabular defaults come from.
``ensemble``
    Five DLSGAN (or flow, ``--detector Flow``) members on tables of several shapes (from the
    benchmark's sets): one member's fit, the five fitted one by one, and the five trained
    jointly (one stacked network, ``BaggingDetector``'s default), alternating in one process
    of one thread; beside them the largest score difference between the jointly trained
    members and the same members fitted alone (float rounding only).
``tables``
    The tabular protocol of ``tabular.py`` (same sets, splits and seeds) with today's defaults
    of DLSGAN, the flow, InvGAN or the autoencoder (``--detector``),
    beside IsolationForest and PyOD's AutoEncoder fitted in the same run, and beside the
    committed columns of ``results/tabular.json``.

Usage::

    python benchmarks/fit_speed.py images --baseline 032be89 --repeats 3
    python benchmarks/fit_speed.py image-quality --n-train 4000 --epochs 2
    python benchmarks/fit_speed.py table-step
    python benchmarks/fit_speed.py optimizers --epochs 10
    python benchmarks/fit_speed.py validation --seeds 3
    python benchmarks/fit_speed.py validation --detector Flow --seeds 2
    python benchmarks/fit_speed.py validation --detector DLSGAN-decay --seeds 3
    python benchmarks/fit_speed.py validation --detector DLSGAN-budget --seeds 3
    python benchmarks/fit_speed.py ensemble --repeats 3
    python benchmarks/fit_speed.py ensemble --detector Flow --repeats 3
    python benchmarks/fit_speed.py tables
    python benchmarks/fit_speed.py tables --detector Flow
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
from _common import (
    RESULTS,
    RunProgress,
    data_home,
    machine,
    machine_markdown,
    parallel_runs,
    write_json,
    write_markdown,
)
from joblib import delayed

HERE = Path(__file__).resolve().parent
REPOSITORY = HERE.parent

# Today's image settings timed beside the baseline (on the CPU every one of them trains with
# channels-last convolution weights): the paper's arithmetic, then each speed lever.
IMAGE_SETTINGS = {
    "float32, R1 every step": {"mixed_precision": False, "r1_interval": 1},
    "bfloat16, R1 every step": {"mixed_precision": True, "r1_interval": 1},
    "float32, R1 every 4 steps": {"mixed_precision": False, "r1_interval": 4},
    "bfloat16, R1 every 4 steps": {"mixed_precision": True, "r1_interval": 4},
    "bfloat16, R1 every 16 steps": {"mixed_precision": True, "r1_interval": 16},
    "defaults": {},
}


def _save(name: str, payload: dict, markdown: str) -> None:
    """Write a part's result file pair and print its table."""
    write_json(name, payload)
    write_markdown(name, markdown)
    print(markdown)


# ------------------------------------------------------------------------------ images
def _mnist_digits(n_images: int) -> np.ndarray:
    """The first ``n_images`` training digits, flat, in [-1, 1] (the loader's scaling)."""
    from skood.datasets import load_mnist

    X, _ = load_mnist(data_home=data_home(), return_X_y=True)
    return X[:n_images]


class _GlobalCount:
    """Stands in for FlopCounterMode's module tracker: every count goes to the total."""

    parents = ("Global",)

    def __enter__(self):
        return self

    def __exit__(self, *args):
        return None


def _time_fit_in_process(settings: dict, n_images: int, threads: int) -> dict:
    """Fit DLSGAN's small image networks for one epoch here; images/s and one step's FLOP."""
    import torch

    from skood import DLSGANDetector

    torch.set_num_threads(threads)
    X = _mnist_digits(n_images)
    common = {"input_shape": (1, 28, 28), "batch_size": 32, "device": "cpu", "random_state": 0}
    DLSGANDetector(**common, **settings, max_epochs=1).fit(X[:64])  # warm the kernels
    detector = DLSGANDetector(**common, **settings, max_epochs=1)
    start = time.perf_counter()
    detector.fit(X)
    seconds = time.perf_counter() - start
    return {
        "images_per_s": n_images / seconds,
        "fit_s": seconds,
        "step_flop": _mean_step_flop(detector.net_, X[:32]),
        "mixed_precision": bool(getattr(detector.net_, "mixed_precision", False)),
    }


def _mean_step_flop(net, rows: np.ndarray) -> float:
    """FLOP of a training step on ``rows``, averaged over the lazy R1 schedule (one step in
    ``r1_interval`` takes the penalty), counted by ``torch.utils.flop_counter``."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    batch = torch.as_tensor(rows, dtype=torch.float32)
    interval = getattr(net, "r1_interval", 1)
    net._random = torch.Generator().manual_seed(0)  # the noise stream lives during training only
    net.history.new_epoch()
    counts = []
    for step in (0, 1):  # a step that takes R1, and (with lazy R1) one that does not
        net._steps_before_epoch = step
        net.history[-1]["batches"] = []
        net.history.new_batch()
        counter = FlopCounterMode(display=False)
        # Its module tracker's backward hooks refuse R1's autograd.grad; the total needs none.
        counter.mod_tracker = _GlobalCount()
        with counter:
            net.train_step(batch)
        counts.append(counter.get_total_flops())
    return (counts[0] + (interval - 1) * counts[1]) / interval


def _matmul_peak(threads: int, dtype_name: str, size: int = 2048, repeats: int = 5) -> float:
    """FLOP/s of the best of ``repeats`` products of two ``size`` x ``size`` matrices."""
    import torch

    torch.set_num_threads(threads)
    dtype = getattr(torch, dtype_name)
    a = torch.randn(size, size).to(dtype)
    b = torch.randn(size, size).to(dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def _run_worker(source: Path, settings: dict | None, args) -> dict:
    """``_time_fit_in_process`` in a fresh process importing skood from ``source``."""
    env = {**os.environ, "PYTHONPATH": f"{source}{os.pathsep}{HERE}"}
    request = json.dumps({"settings": settings, "n_images": args.n_images, "threads": args.threads})
    completed = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "_worker", request],
        env=env,
        cwd=tempfile.gettempdir(),  # so that the checkout's own skood is not imported instead
        capture_output=True,
        text=True,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"timing worker failed:\n{completed.stderr[-3000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def _unpack(commit: str, folder: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(REPOSITORY), "archive", commit, "skood"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def images(args) -> None:
    # The baseline commit's step is timed with its own defaults (its only image step: float32,
    # R1 on every step); today's under each setting of IMAGE_SETTINGS.
    runs: dict[str, list[dict]] = {}
    progress = RunProgress(args.repeats * (len(IMAGE_SETTINGS) + 1))
    with tempfile.TemporaryDirectory() as folder:
        baseline_source = _unpack(args.baseline, Path(folder))
        candidates = {f"committed step ({args.baseline})": (baseline_source, {})}
        candidates |= {name: (REPOSITORY, settings) for name, settings in IMAGE_SETTINGS.items()}
        for repeat in range(args.repeats):
            for name, (source, settings) in candidates.items():
                with progress.run(name, "MNIST", repeat):
                    runs.setdefault(name, []).append(_run_worker(source, settings, args))
    peaks = {dtype: _matmul_peak(args.threads, dtype) for dtype in ("float32", "bfloat16")}
    baseline_name = next(iter(candidates))
    baseline_speed = statistics.median(run["images_per_s"] for run in runs[baseline_name])
    rows = {}
    for name, measured in runs.items():
        speed = statistics.median(run["images_per_s"] for run in measured)
        flop = measured[0]["step_flop"]
        dtype = "bfloat16" if measured[0]["mixed_precision"] else "float32"
        achieved = flop * speed / 32
        rows[name] = {
            "images_per_s": speed,
            "images_per_s_runs": [run["images_per_s"] for run in measured],
            "speedup": speed / baseline_speed,
            "step_gflop": flop / 1e9,
            "achieved_gflop_per_s": achieved / 1e9,
            "dtype": dtype,
            "fraction_of_matmul_peak": achieved / peaks[dtype],
        }
    payload = {
        "machine": machine(),
        "setup": {
            "images": args.n_images,
            "threads": args.threads,
            "batch_size": 32,
            "repeats": args.repeats,
            "baseline": args.baseline,
        },
        "matmul_peak_gflop_per_s": {dtype: peak / 1e9 for dtype, peak in peaks.items()},
        "runs": rows,
    }
    _save(args.output, payload, _images_markdown(payload))


def _images_markdown(payload: dict) -> str:
    setup = payload["setup"]
    peaks = payload["matmul_peak_gflop_per_s"]
    lines = [
        "# Image training throughput: DLSGAN small networks",
        "",
        machine_markdown(payload["machine"]),
        "",
        f"{setup['images']} MNIST digits (28 x 28), one epoch of batch {setup['batch_size']} "
        f"per `fit`, {setup['threads']} threads, median of {setup['repeats']} alternating runs. "
        f"Baseline: the step of commit {setup['baseline']} (float32, NCHW, R1 on every step), "
        "run from its own source in its own process; today's steps train with channels-last "
        "convolution weights. Step FLOP counted by `torch.utils.flop_counter` on one training step "
        "(forward, backward and R1's double backward as taken on that step).",
        "",
        f"Matrix-multiply peak on this machine ({setup['threads']} threads, 2048 x 2048): "
        f"float32 {peaks['float32']:.0f} GFLOP/s, bfloat16 {peaks['bfloat16']:.0f} GFLOP/s.",
        "",
        "| step | images / s | vs baseline | GFLOP / step | GFLOP/s | of matmul peak |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in payload["runs"].items():
        lines.append(
            f"| {name} | {row['images_per_s']:.1f} | {row['speedup']:.2f}x | "
            f"{row['step_gflop']:.2f} | {row['achieved_gflop_per_s']:.1f} ({row['dtype']}) | "
            f"{100 * row['fraction_of_matmul_peak']:.0f} % |"
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------- table steps
TABLE_OPTIMIZERS = {"Adam (for-loop)": {"foreach": False}, "Adam foreach": {"foreach": True}}
TABLE_OPTIMIZERS["Adam fused"] = {"fused": True}


def _table_step(args) -> None:
    """Per-step time and FLOP of DLSGAN on a table of vowels' shape, one thread, by batch size
    and optimizer implementation, beside PyOD's AutoEncoder and the single-thread matmul peak."""
    import torch

    import skood.base
    from skood import DLSGANDetector

    torch.set_num_threads(1)
    _warm_up()
    X = np.random.RandomState(0).normal(size=(args.rows, args.features))
    original = skood.base.BaseDetector._optimizer_params
    cases = [(name, batch) for name in TABLE_OPTIMIZERS for batch in args.batch_sizes]
    times: dict[tuple[str, int], list[float]] = {case: [] for case in cases}
    fitted = {}
    # Repeats alternate between the cases, so that a slow spell of the machine is shared.
    for _ in range(args.repeats):
        for name, batch_size in cases:

            def patched(self, options=TABLE_OPTIMIZERS[name]):
                params = original(self)
                params.update({f"optimizer__{key}": value for key, value in options.items()})
                return params

            skood.base.BaseDetector._optimizer_params = patched
            try:
                detector = DLSGANDetector(batch_size=batch_size, device="cpu", random_state=0)
                start = time.perf_counter()
                detector.fit(X)
                times[name, batch_size].append(time.perf_counter() - start)
            finally:
                skood.base.BaseDetector._optimizer_params = original
            fitted[name, batch_size] = detector
    rows = {}
    for (name, batch_size), detector in fitted.items():
        steps = detector.max_epochs * -(-args.rows // batch_size)
        flop = _mean_step_flop(detector.net_, X[:batch_size])
        seconds = statistics.median(times[name, batch_size])
        rows[f"{name}, batch {batch_size}"] = {
            "fit_s": seconds,
            "fit_s_runs": times[name, batch_size],
            "ms_per_step": 1e3 * seconds / steps,
            "rows_per_s": args.rows * detector.max_epochs / seconds,
            "step_mflop": flop / 1e6,
        }
    from pyod.models.auto_encoder import AutoEncoder

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        times = []
        for _ in range(args.repeats):
            pyod = AutoEncoder(random_state=0, verbose=0)
            start = time.perf_counter()
            pyod.fit(X)
            times.append(time.perf_counter() - start)
    pyod_steps = pyod.epoch_num * -(-args.rows // pyod.batch_size)
    peak = _matmul_peak(1, "float32", size=1024)
    payload = {
        "machine": machine(),
        "setup": {"rows": args.rows, "features": args.features, "repeats": args.repeats},
        "matmul_peak_gflop_per_s": peak / 1e9,
        "dlsgan": rows,
        "pyod_autoencoder": {
            "fit_s": statistics.median(times),
            "epochs": pyod.epoch_num,
            "batch_size": pyod.batch_size,
            "ms_per_step": 1e3 * statistics.median(times) / pyod_steps,
        },
    }
    lines = [
        "# DLSGAN table steps: time, FLOP and the optimizer",
        "",
        machine_markdown(payload["machine"]),
        "",
        f"A {args.rows} x {args.features} table (vowels' training part), one thread, DLSGAN "
        f"defaults but the batch size and optimizer, median of {args.repeats} alternating whole "
        "`fit` calls "
        "(30 epochs, scoring for `offset_` included). FLOP per step averaged over the lazy R1 "
        "schedule (`torch.utils.flop_counter`); float32 matmul peak, one thread (1024 x 1024): "
        f"{peak / 1e9:.0f} GFLOP/s.",
        "",
        "| optimizer, batch | fit (s) | ms / step | rows / s | MFLOP / step | of peak |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        achieved = row["step_mflop"] * 1e6 / (row["ms_per_step"] / 1e3)
        lines.append(
            f"| {name} | {row['fit_s']:.2f} | {row['ms_per_step']:.2f} | {row['rows_per_s']:.0f} "
            f"| {row['step_mflop']:.1f} | {100 * achieved / peak:.1f} % |"
        )
    auto = payload["pyod_autoencoder"]
    lines += [
        "",
        f"PyOD's AutoEncoder (its defaults: {auto['epochs']} epochs, batch {auto['batch_size']}): "
        f"fit {auto['fit_s']:.2f} s, {auto['ms_per_step']:.2f} ms per step.",
    ]
    _save(args.output, payload, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- optimizers
def _optimizer_detectors(epochs: int) -> dict:
    """Every detector that trains networks, at its table defaults but ``max_epochs``."""
    from skood import (
        ApproximateMassFlowDetector,
        AutoencoderDetector,
        DLSGANDetector,
        DMRDetector,
        InvGANDetector,
        PostHocDetector,
    )

    common = {"device": "cpu", "random_state": 0}
    return {
        "DLSGAN": lambda: DLSGANDetector(max_epochs=epochs, **common),
        "autoencoder": lambda: AutoencoderDetector(max_epochs=epochs, **common),
        "flow": lambda: ApproximateMassFlowDetector(max_epochs=epochs, **common),
        "InvGAN": lambda: InvGANDetector(max_epochs=epochs, **common),
        "PostHoc": lambda: PostHocDetector(max_epochs=epochs, **common),
        "DMR": lambda: DMRDetector(
            generator=DLSGANDetector(max_epochs=epochs, **common),
            classifier_epochs=epochs,
            max_epochs=epochs,
            **common,
        ),
    }


def optimizers(args) -> None:
    """Whole fits with PyTorch's for-loop Adam (its CPU default) against foreach Adam,
    alternating, one thread, on a table of vowels' shape: time, and whether the scores are
    identical."""
    import torch

    class ForeachAdam(torch.optim.Adam):
        def __init__(self, params, **options):
            super().__init__(params, **{"foreach": True, **options})

    torch.set_num_threads(1)
    _warm_up()
    rng = np.random.RandomState(0)
    X = rng.normal(size=(args.rows, args.features))
    y = rng.randint(3, size=args.rows)  # classes, for the supervised detectors
    makers = _optimizer_detectors(args.epochs)
    supervised = {"PostHoc", "DMR"}
    times = {(name, mode): [] for name in makers for mode in ("for-loop", "foreach")}
    scores = {}
    for _ in range(args.repeats):
        for name, make in makers.items():
            for mode in ("for-loop", "foreach"):
                detector = make()
                targets = (y,) if name in supervised else ()
                # Every net of the detector builds its Adam from torch.optim.Adam.
                foreach = mock.patch.object(torch.optim, "Adam", ForeachAdam)
                with foreach if mode == "foreach" else contextlib.nullcontext():
                    start = time.perf_counter()
                    detector.fit(X, *targets)
                    times[name, mode].append(time.perf_counter() - start)
                scores[name, mode] = detector.score_samples(X)
    rows = {}
    for name in makers:
        loop, each = (statistics.median(times[name, mode]) for mode in ("for-loop", "foreach"))
        rows[name] = {
            "for_loop_fit_s": loop,
            "foreach_fit_s": each,
            "speedup": loop / each,
            "identical_scores": bool(
                np.array_equal(scores[name, "for-loop"], scores[name, "foreach"])
            ),
            "runs": {mode: times[name, mode] for mode in ("for-loop", "foreach")},
        }
    payload = {
        "machine": machine(),
        "setup": {
            "rows": args.rows,
            "features": args.features,
            "epochs": args.epochs,
            "repeats": args.repeats,
        },
        "detectors": rows,
    }
    lines = [
        "# Adam for-loop against foreach, every trained detector",
        "",
        machine_markdown(payload["machine"]),
        "",
        f"A {args.rows} x {args.features} table of normal noise (3 random classes for PostHoc "
        f"and DMR), one thread, each detector's defaults but {args.epochs} epochs; median of "
        f"{args.repeats} alternating whole `fit` calls (scoring for `offset_` included). "
        "Scores compared bit for bit on the training rows.",
        "",
        "| detector | for-loop fit (s) | foreach fit (s) | speed-up | identical scores |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['for_loop_fit_s']:.2f} | {row['foreach_fit_s']:.2f} | "
            f"{row['speedup']:.2f}x | {'yes' if row['identical_scores'] else 'no'} |"
        )
    _save(args.output, payload, "\n".join(lines) + "\n")


# ------------------------------------------------------------------------ image quality
def _image_quality_run(settings: dict, args) -> dict:
    """Train on MNIST training digits; ROC AUC of held-out training digits against
    Fashion-MNIST training images (neither is an evaluation set of ``mnist_ood.py``)."""
    import torch

    from skood import DLSGANDetector
    from skood.datasets import load_fashion_mnist, load_mnist
    from skood.metrics import roc_auc

    torch.set_num_threads(args.threads)
    digits, _ = load_mnist(data_home=data_home(), return_X_y=True)
    fashion, _ = load_fashion_mnist(data_home=data_home(), return_X_y=True)
    train, held_out = digits[: args.n_train], digits[50000 : 50000 + args.n_valid]
    validation = np.r_[held_out, fashion[: args.n_valid]]
    labels = np.r_[np.ones(args.n_valid), -np.ones(args.n_valid)]
    detector = DLSGANDetector(
        input_shape=(1, 28, 28), max_epochs=args.epochs, device="cpu", random_state=0, **settings
    )
    start = time.perf_counter()
    detector.fit(train)
    seconds = time.perf_counter() - start
    result = {"fit_s": seconds, "images_per_s": args.n_train * args.epochs / seconds}
    for score_type in ("nlp", "reconstruction"):
        detector.set_params(score_type=score_type)
        result[f"roc_auc_{score_type}"] = roc_auc(labels, detector.score_samples(validation))
    return result


def image_quality(args) -> None:
    settings = {
        name: IMAGE_SETTINGS[name]
        for name in (
            "float32, R1 every step",
            "bfloat16, R1 every step",
            "bfloat16, R1 every 4 steps",
        )
    }
    progress = RunProgress(len(settings))
    rows = {}
    for name, params in settings.items():
        with progress.run(name, "MNIST", 0):
            rows[name] = _image_quality_run(params, args)
    payload = {
        "machine": machine(),
        "protocol": (
            f"DLSGAN small networks trained on the first {args.n_train} MNIST training digits "
            f"for {args.epochs} epochs (batch 32, {args.threads} threads, random_state=0); ROC "
            f"AUC of {args.n_valid} held-out MNIST training digits (rows 50,000 on) against the "
            f"first {args.n_valid} Fashion-MNIST training images. No test split is used."
        ),
        "runs": rows,
    }
    lines = [
        "# Image speed settings on validation images",
        "",
        machine_markdown(payload["machine"]),
        "",
        payload["protocol"],
        "",
        "| settings | images / s | fit (s) | ROC AUC NLP | ROC AUC reconstruction |",
        "|---|---|---|---|---|",
    ]
    for name, row in rows.items():
        lines.append(
            f"| {name} | {row['images_per_s']:.1f} | {row['fit_s']:.0f} | "
            f"{row['roc_auc_nlp']:.4f} | {row['roc_auc_reconstruction']:.4f} |"
        )
    _save(args.output, payload, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------- validation
_WARM: list[bool] = []


def _warm_up() -> None:
    """One small fit per worker process, so that no timed fit pays for first calls."""
    if not _WARM:
        from skood import ApproximateMassFlowDetector, DLSGANDetector

        X = np.random.RandomState(0).normal(size=(64, 4))
        DLSGANDetector(max_epochs=1, device="cpu").fit(X)
        ApproximateMassFlowDetector(max_epochs=1, n_couplings=2, device="cpu").fit(X)
        try:  # PyOD's first fit pays for imports and setup too
            from pyod.models.auto_encoder import AutoEncoder
        except ImportError:
            pass
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                AutoEncoder(epoch_num=1, verbose=0).fit(X)
        _WARM.append(True)


def _validation_detector(detector: str, seed: int, params: dict, n_rows: int):
    """The detector of a validation or tables run, and its (score_type, short name) pairs."""
    if detector == "Flow":
        from skood import ApproximateMassFlowDetector

        model = ApproximateMassFlowDetector(random_state=seed, device="cpu", **params)
        return model, (("log_likelihood", "LL"), ("approximate_mass", "AM"))
    from skood import BaggingDetector, DLSGANDetector

    params = dict(params)
    members = params.pop("ensemble", None)
    detector_class = DLSGANDetector
    if params.pop("fused_adam", False):
        detector_class = _with_fused_adam(DLSGANDetector)
    if params.get("variance_decay") == _DECAY_OVER_A_TENTH:
        params["variance_decay"] = _decay_over_a_tenth(n_rows, params.get("batch_size", 32))
    if isinstance(params.get("max_epochs"), _StepBudget):
        params["max_epochs"] = params["max_epochs"].epochs(n_rows, params.get("batch_size", 32))
    model = detector_class(random_state=seed, device="cpu", **params)
    if members is not None:
        # ``ensemble``: the number of members, or BaggingDetector's parameters.
        bagging = {"n_estimators": members} if isinstance(members, int) else members
        model = BaggingDetector(model, random_state=seed, **bagging)
    return model, (("nlp", "NLP"), ("reconstruction", "Rec"))


# A variance decay whose EMA spans a tenth of the training steps (30 epochs), within the
# range [0.9, 0.999]: the paper's 0.999 on large data, faster on small tables.
_DECAY_OVER_A_TENTH = "a tenth of the steps"


class _StepBudget(int):
    """A ``max_epochs`` of a validation setting: 30 epochs, or fewer where 30 would take
    more than ``self`` optimisation steps (at least one epoch)."""

    def epochs(self, n_rows: int, batch_size: int) -> int:
        batches = -(-n_rows // batch_size)
        return max(1, min(30, -(-int(self) // batches)))


def _with_fused_adam(detector_class: type) -> type:
    """``detector_class`` with PyTorch's fused Adam instead of its default implementation."""

    class FusedAdam(detector_class):
        def _optimizer_params(self) -> dict:
            return {**super()._optimizer_params(), "optimizer__fused": True}

    FusedAdam.__name__ = f"{detector_class.__name__}WithFusedAdam"
    return FusedAdam


def _decay_over_a_tenth(n_rows: int, batch_size: int, epochs: int = 30) -> float:
    steps = epochs * -(-n_rows // batch_size)
    return float(np.clip(1.0 - 10.0 / steps, 0.9, 0.999))


def _latent_scale_spread(model) -> float:
    """Standard deviation of the final latent scale (0: the scale never moved from 1)."""
    members = getattr(model, "estimators_", [model])
    return float(np.mean([np.std(member.latent_scale_) for member in members]))


def _validation_seed(
    name: str, seed: int, detector: str, configurations: dict, fraction: float
) -> dict:
    """Every configuration on one split's training part: fitted on part of it, scored on the
    held-back rows (labels used there only)."""
    import torch
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler
    from tabular import _load, _with_score_type

    from skood.metrics import roc_auc

    torch.set_num_threads(1)
    _warm_up()
    X, y = _load(name)
    X_train, _, y_train, _ = train_test_split(X, y, test_size=0.4, random_state=seed)
    try:
        X_fit, X_valid, _, y_valid = train_test_split(
            X_train, y_train, test_size=fraction, random_state=seed, stratify=y_train
        )
    except ValueError:  # too few outliers to stratify
        return {}
    if np.all(y_valid == 1) or np.all(y_valid == -1):
        return {}
    scaler = StandardScaler().fit(X_fit)
    X_fit, X_valid = scaler.transform(X_fit), scaler.transform(X_valid)
    rows = {}
    for label, params in configurations.items():
        model, score_types = _validation_detector(detector, seed, params, X_fit.shape[0])
        start = time.perf_counter()
        model.fit(X_fit)
        elapsed = time.perf_counter() - start
        extra = {}
        if hasattr(model, "latent_scale_") or hasattr(model, "estimators_"):
            extra["scale_spread"] = _latent_scale_spread(model)
        for score_type, short in score_types:
            scorer = _with_score_type(model, score_type, X_fit)
            candidates = {label: scorer.score_samples(X_valid)}
            if hasattr(scorer, "member_scores"):
                # The median of the members' rescaled scores, beside the mean: robust to a
                # minority of members whose training failed.
                median = np.median(scorer.member_scores(X_valid), axis=0)
                candidates[f"{label}, median of the members"] = median
            for name, scores in candidates.items():
                rows[f"{name} | {short}"] = {
                    "roc_auc": roc_auc(y_valid, scores),
                    "fit_s": elapsed,
                    **extra,
                }
    return rows


def _flow_case(width: int, n_couplings: int, epochs: int, release: str = "") -> tuple:
    """A flow setting's label and parameters (``release`` names the release it was default in)."""
    label = f"{release}hidden ({width}, {width}), {n_couplings} couplings, {epochs} epochs"
    return label, {"hidden_dims": (width, width), "n_couplings": n_couplings, "max_epochs": epochs}


VALIDATION_CONFIGURATIONS = {
    "DLSGAN": {
        "paper: batch 32, lr 1e-3, R1 every step": {
            "batch_size": 32,
            "lr": 1e-3,
            "r1_interval": 1,
        },
        "batch 32, lr 1e-3, R1 every 4": {"batch_size": 32, "lr": 1e-3, "r1_interval": 4},
        "batch 128, lr 1e-3, R1 every 4": {"batch_size": 128, "lr": 1e-3, "r1_interval": 4},
        "batch 128, lr 2e-3, R1 every 4": {"batch_size": 128, "lr": 2e-3, "r1_interval": 4},
        "batch 256, lr 1e-3, R1 every 4": {"batch_size": 256, "lr": 1e-3, "r1_interval": 4},
        "batch 256, lr 2.8e-3, R1 every 4": {"batch_size": 256, "lr": 2.8e-3, "r1_interval": 4},
    },
    # The flow's step is compute-bound (a double backward through 8 couplings): its widths,
    # depth and length are the levers.
    # What makes DLSGAN's latent scale move on small tables: 30 epochs of a few hundred rows
    # are a few hundred steps, while the paper's EMA (0.999) spans 1,000; and ensembles.
    "DLSGAN-decay": {
        "0.1.0: variance decay 0.999": {},
        "variance decay 0.99": {"variance_decay": 0.99},
        "variance decay 0.95": {"variance_decay": 0.95},
        "variance decay over a tenth of the steps": {"variance_decay": _DECAY_OVER_A_TENTH},
        "5 members, variance decay 0.999": {"ensemble": 5},
        "5 members, variance decay 0.99": {"ensemble": 5, "variance_decay": 0.99},
    },
    # How much training a table needs: fewer epochs, a cap on the optimisation steps (the
    # fit time grows with them), and PyTorch's fused Adam (the optimizer's per-parameter ops
    # are about a third of a table step).
    "DLSGAN-budget": {
        "0.1.0: 30 epochs": {},
        "10 epochs": {"max_epochs": 10},
        "15 epochs": {"max_epochs": 15},
        "30 epochs, at most 300 steps": {"max_epochs": _StepBudget(300)},
        "30 epochs, at most 600 steps": {"max_epochs": _StepBudget(600)},
        "fused Adam": {"fused_adam": True},
    },
    # What the ensemble around default DLSGANs should be: more members, and members that see
    # part of the features or rows (feature bagging suits wide tables such as Arrhythmia).
    "DLSGAN-ensemble": {
        "5 members": {"ensemble": 5},
        "10 members": {"ensemble": 10},
        "5 members, half the features": {"ensemble": {"n_estimators": 5, "max_features": 0.5}},
        "10 members, half the features": {"ensemble": {"n_estimators": 10, "max_features": 0.5}},
        "10 members, 80% of the rows": {"ensemble": {"n_estimators": 10, "max_samples": 0.8}},
        "10 members, z-scores": {"ensemble": {"n_estimators": 10, "combination": "zscore"}},
    },
    # Feature bagging for wide tables (Arrhythmia, 274 features): fewer features per member,
    # more members.
    "DLSGAN-features": {
        "10 members, half the features": {"ensemble": {"n_estimators": 10, "max_features": 0.5}},
        "10 members, a quarter of the features": {
            "ensemble": {"n_estimators": 10, "max_features": 0.25}
        },
        "20 members, half the features": {"ensemble": {"n_estimators": 20, "max_features": 0.5}},
        "20 members, a quarter of the features": {
            "ensemble": {"n_estimators": 20, "max_features": 0.25}
        },
    },
    "Flow": dict(
        [
            _flow_case(256, 8, 100, release="0.1.0: "),
            _flow_case(128, 8, 100),
            _flow_case(128, 8, 50),
            _flow_case(64, 8, 100),
            _flow_case(64, 4, 100),
            _flow_case(64, 8, 40),
        ]
    ),
}


def validation(args) -> None:
    from tabular import available_datasets, evaluated_seeds

    names = args.datasets or available_datasets(args.max_rows)
    configurations = VALIDATION_CONFIGURATIONS[args.detector]
    jobs = [
        (
            (f"{args.detector} settings", name, seed),
            delayed(_validation_seed)(name, seed, args.detector, configurations, args.fraction),
        )
        for name in names
        for seed in evaluated_seeds(name, args.seeds)
    ]
    results = parallel_runs(jobs, n_jobs=args.n_jobs, progress=RunProgress(len(jobs)))
    per_set: dict[str, dict[str, dict[str, list[float]]]] = {}
    for ((_, name, _), _), rows in zip(jobs, results, strict=True):
        for column, metrics in rows.items():
            entry = per_set.setdefault(name, {}).setdefault(column, {})
            for key, value in metrics.items():
                entry.setdefault(key, []).append(float(value))
    payload = {
        "machine": machine(),
        "protocol": (
            "tabular.py's split (test_size=0.4, random_state=seed); its training part split "
            f"again, {args.fraction:.0%} of the rows held back (stratified, random_state=seed); "
            "StandardScaler and the detector fitted on the rest; ROC AUC on the held-back rows. "
            "Test parts unused."
        ),
        "detector": args.detector,
        "configurations": configurations,
        "datasets": {
            name: {
                column: {
                    **{f"{key}_mean": float(np.mean(values)) for key, values in entry.items()},
                    "per_seed": entry,
                }
                for column, entry in columns.items()
            }
            for name, columns in per_set.items()
        },
    }
    _save(args.output, payload, _validation_markdown(payload))


def _validation_markdown(payload: dict) -> str:
    datasets = payload["datasets"]
    columns = sorted({column for entry in datasets.values() for column in entry})
    lines = [
        f"# {payload.get('detector', 'DLSGAN')} tabular settings on validation rows",
        "",
        machine_markdown(payload["machine"]),
        "",
        payload["protocol"],
        "",
        f"Over {len(datasets)} sets: mean ROC AUC on the held-back rows, median and largest mean "
        "fit time per set.",
        "",
    ]
    spread = any("scale_spread_mean" in e for entry in datasets.values() for e in entry.values())
    header = "| settings | score | mean ROC AUC | median fit (s) | largest fit (s) |"
    lines += [header + (" latent scale spread |" if spread else ""), "|---" * (5 + spread) + "|"]
    for column in columns:
        found = [entry[column] for entry in datasets.values() if column in entry]
        aucs = [metrics["roc_auc_mean"] for metrics in found]
        fits = [metrics["fit_s_mean"] for metrics in found]
        settings, score = column.split(" | ")
        row = (
            f"| {settings} | {score} | {np.mean(aucs):.4f} | {np.median(fits):.2f} | "
            f"{np.max(fits):.2f} |"
        )
        if spread:
            row += (
                f" {np.mean([metrics.get('scale_spread_mean', np.nan) for metrics in found]):.3f} |"
            )
        lines.append(row)
    if spread:
        lines += [
            "",
            "Latent scale spread: standard deviation of the final latent scale `latent_scale_` "
            "(0 when it stayed at 1), mean over the sets (and members).",
        ]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------- tables
# Columns of results/tabular.json that a tables run of each detector reproduces.
TABLE_COLUMNS = {
    "DLSGAN": ("DLSGAN NLP", "DLSGAN Rec"),
    "Flow": ("Flow LL", "Flow AM"),
    "InvGAN": ("InvGAN",),
    "AE": ("skood AE",),  # no committed column: fit times and ROC AUC beside the baselines
}


def _tables_seed(name: str, seed: int, detector: str) -> dict:
    """tabular.py's seed run: the detector with today's defaults, IsolationForest, PyOD's."""
    from tabular import run_seed

    _warm_up()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return run_seed(name, seed, {}, [detector, "baselines"])


def tables(args) -> None:
    from tabular import _load, _recorded_seeds, available_datasets, summarize

    committed = json.loads((RESULTS / "tabular.json").read_text())["datasets"]
    names = args.datasets or [name for name in available_datasets(args.max_rows)]
    payload = {
        "machine": machine(),
        "protocol": "tabular.py's (same sets, splits and seeds as results/tabular.json)",
        "detector": args.detector,
        "datasets": {},
    }
    jobs = []
    for name in names:
        seeds = _recorded_seeds(committed[name]) if name in committed else range(args.seeds)
        jobs += [
            ((args.detector, name, seed), delayed(_tables_seed)(name, seed, args.detector))
            for seed in seeds
        ]
    results = parallel_runs(jobs, n_jobs=args.n_jobs, progress=RunProgress(len(jobs)))
    grouped: dict[str, list[dict]] = {}
    for ((_, name, _), _), rows in zip(jobs, results, strict=True):
        if rows:
            grouped.setdefault(name, []).append(rows)
    kept = (*TABLE_COLUMNS[args.detector], "IsolationForest", "AutoEncoder (PyOD)")
    for name, per_seed in grouped.items():
        payload["datasets"][name] = {
            "n_samples": int(_load(name)[0].shape[0]),
            "n_seeds": len(per_seed),
            "detectors": summarize(per_seed),
        }
        if name in committed:
            payload["datasets"][name]["committed"] = {
                column: {
                    key: committed[name]["detectors"][column][key]
                    for key in ("roc_auc_mean", "fit_s_mean")
                }
                for column in kept
                if column in committed[name]["detectors"]
            }
    _save(args.output, payload, _tables_markdown(payload))


def _tables_markdown(payload: dict) -> str:
    datasets = payload["datasets"]
    detector = payload.get("detector", "DLSGAN")
    columns = TABLE_COLUMNS[detector]
    score_cells = " | ".join(f"{column} | committed" for column in columns)
    lines = [
        f"# {detector} tabular fit time and ROC AUC with today's defaults",
        "",
        machine_markdown(payload["machine"]),
        "",
        "Protocol: " + payload["protocol"] + f". Fit times of this run ({detector}, "
        "IsolationForest and PyOD's AutoEncoder side by side, 2 processes of one thread); "
        "`committed` is the column of `results/tabular.json` (its fit time measured then).",
        "",
        f"| set | rows | {detector} fit (s) | committed fit (s) | PyOD AE fit (s) | ratio | "
        f"IForest fit (s) | {score_cells} | IForest | PyOD AE |",
        "|---|---|---|---|---|---|---|" + "---|---|" * len(columns) + "---|---|",
    ]
    ratios, fits, pyod_fits, committed_fits = [], [], [], []
    deltas: dict[str, list[float]] = {column: [] for column in columns}
    for name, entry in datasets.items():
        result, old = entry["detectors"], entry.get("committed", {})
        ours = result[columns[0]]["fit_s_mean"]
        before_fit = old.get(columns[0], {}).get("fit_s_mean", float("nan"))
        pyod = result.get("AutoEncoder (PyOD)", {}).get("fit_s_mean", float("nan"))
        ratios.append(ours / pyod)
        fits.append(ours)
        pyod_fits.append(pyod)
        committed_fits.append(before_fit)
        cells = []
        for column in columns:
            now = result[column]["roc_auc_mean"]
            before = old.get(column, {}).get("roc_auc_mean", float("nan"))
            deltas[column].append(now - before)
            cells += [f"{now:.3f}", f"{before:.3f}"]
        lines.append(
            f"| {name} | {entry['n_samples']} | {ours:.2f} | {before_fit:.2f} | {pyod:.2f} | "
            f"{ours / pyod:.1f} | {result['IsolationForest']['fit_s_mean']:.2f} | "
            f"{' | '.join(cells)} | {result['IsolationForest']['roc_auc_mean']:.3f} | "
            f"{result.get('AutoEncoder (PyOD)', {}).get('roc_auc_mean', float('nan')):.3f} |"
        )
    committed = not np.all(np.isnan(committed_fits))
    before = f" (committed column {np.nanmedian(committed_fits):.2f} s)" if committed else ""
    lines += [
        "",
        f"Over {len(datasets)} sets. Median fit: {detector} {np.median(fits):.2f} s{before}, "
        f"PyOD AutoEncoder {np.median(pyod_fits):.2f} s; largest ratio to PyOD's AutoEncoder "
        f"{np.max(ratios):.1f}x (target: median at most PyOD's, every set at most 5x).",
    ]
    means = {
        column: np.mean([entry["detectors"][column]["roc_auc_mean"] for entry in datasets.values()])
        for column in (*columns, "IsolationForest", "AutoEncoder (PyOD)")
    }
    lines.append(
        "Mean ROC AUC in this run: "
        + ", ".join(f"{column} {value:.4f}" for column, value in means.items())
        + "."
    )
    if not committed:
        lines.append("No committed column in results/tabular.json to compare ROC AUC with.")
        return "\n".join(lines) + "\n"
    for column, values in deltas.items():
        lines.append(
            f"{column}: mean ROC AUC change against the committed column "
            f"{np.nanmean(values):+.4f} over {len(values)} sets (target: no lower than -0.005)."
        )
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------ ensemble
ENSEMBLE_SETS = (
    "odds:lympho",
    "odds:arrhythmia",
    "odds:letter",
    "adbench:fault",
    "odds:mammography",
)


def ensemble(args) -> None:
    import torch
    from sklearn.preprocessing import StandardScaler
    from tabular import _load

    from skood import ApproximateMassFlowDetector, DLSGANDetector
    from skood._joint import fit_jointly

    detector_class = {"DLSGAN": DLSGANDetector, "Flow": ApproximateMassFlowDetector}[args.detector]
    torch.set_num_threads(1)
    _warm_up()
    rows = []
    progress = RunProgress(len(args.datasets) * args.repeats)
    for name in args.datasets:
        X, _ = _load(name)
        X = StandardScaler().fit_transform(X[: int(0.6 * X.shape[0])])  # a training part's size
        seeds = range(args.members)
        times: dict[str, list[float]] = {"one": [], "alone": [], "joint": []}
        for repeat in range(args.repeats):
            start = time.perf_counter()
            alone = [detector_class(random_state=seed, device="cpu").fit(X) for seed in seeds]
            times["alone"].append(time.perf_counter() - start)
            times["one"].append(times["alone"][-1] / args.members)
            joint = [detector_class(random_state=seed, device="cpu") for seed in seeds]
            start = time.perf_counter()
            fit_jointly(joint, [X] * args.members)
            times["joint"].append(time.perf_counter() - start)
            progress.finished(f"{args.detector} x{args.members}", name, repeat)
        difference = max(
            float(np.max(np.abs(a.score_samples(X) - b.score_samples(X))))
            for a, b in zip(alone, joint, strict=True)
        )
        spread = max(float(np.ptp(a.score_samples(X))) for a in alone)
        median = {key: statistics.median(values) for key, values in times.items()}
        rows.append(
            {
                "set": name,
                "rows": X.shape[0],
                "features": X.shape[1],
                "times_s": times,
                "one_fit_s": median["one"],
                "alone_s": median["alone"],
                "joint_s": median["joint"],
                "joint_in_fits": median["joint"] / median["one"],
                "speedup": median["alone"] / median["joint"],
                "largest_score_difference": difference,
                "score_range": spread,
            }
        )
    payload = {
        "machine": machine(),
        "detector": args.detector,
        "members": args.members,
        "repeats": args.repeats,
        "rows": rows,
    }
    lines = [
        f"# {args.members} {args.detector} members trained jointly against one by one",
        "",
        machine_markdown(payload["machine"]),
        "",
        f"{args.members} members with default settings on the first 60% of each set's rows "
        f"(standardized), one process of one thread; median of {args.repeats} alternating "
        "repeats. `one fit`: the one-by-one time divided by the members.",
        "",
        "| set | rows x features | one fit (s) | one by one (s) | jointly (s) | jointly, in "
        "fits | speed-up | largest score difference (score range) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        lines.append(
            f"| {row['set']} | {row['rows']} x {row['features']} | {row['one_fit_s']:.2f} | "
            f"{row['alone_s']:.2f} | {row['joint_s']:.2f} | {row['joint_in_fits']:.2f} | "
            f"{row['speedup']:.2f}x | {row['largest_score_difference']:.1e} "
            f"({row['score_range']:.3g}) |"
        )
    _save(args.output, payload, "\n".join(lines) + "\n")


# --------------------------------------------------------------------------------- main
def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_worker":
        request = json.loads(sys.argv[2])
        timing = _time_fit_in_process(request["settings"], request["n_images"], request["threads"])
        print(json.dumps(timing))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parts = parser.add_subparsers(dest="part", required=True)
    image_part = parts.add_parser("images")
    image_part.add_argument("--baseline", default="032be89", help="commit of the baseline step")
    image_part.add_argument("--n-images", type=int, default=640)
    image_part.add_argument("--threads", type=int, default=2)
    image_part.add_argument("--repeats", type=int, default=3)
    image_part.add_argument("--output", default="fit_speed_images")
    step_part = parts.add_parser("table-step")
    step_part.add_argument("--rows", type=int, default=873)
    step_part.add_argument("--features", type=int, default=12)
    step_part.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128, 256])
    step_part.add_argument("--repeats", type=int, default=3)
    step_part.add_argument("--output", default="fit_speed_table_step")
    optimizer_part = parts.add_parser("optimizers")
    optimizer_part.add_argument("--rows", type=int, default=873)
    optimizer_part.add_argument("--features", type=int, default=12)
    optimizer_part.add_argument("--epochs", type=int, default=10)
    optimizer_part.add_argument("--repeats", type=int, default=3)
    optimizer_part.add_argument("--output", default="fit_speed_optimizers")
    quality_part = parts.add_parser("image-quality")
    quality_part.add_argument("--n-train", type=int, default=4000)
    quality_part.add_argument("--n-valid", type=int, default=1000)
    quality_part.add_argument("--epochs", type=int, default=2)
    quality_part.add_argument("--threads", type=int, default=2)
    quality_part.add_argument("--output", default="fit_speed_image_quality")
    ensemble_part = parts.add_parser("ensemble")
    ensemble_part.add_argument("--datasets", nargs="+", default=list(ENSEMBLE_SETS))
    ensemble_part.add_argument("--members", type=int, default=5)
    ensemble_part.add_argument("--repeats", type=int, default=3)
    ensemble_part.add_argument("--detector", choices=["DLSGAN", "Flow"], default="DLSGAN")
    ensemble_part.add_argument("--output", help="default: fit_speed_ensemble[_flow]")
    for name in ("validation", "tables"):
        part = parts.add_parser(name)
        detectors = sorted(VALIDATION_CONFIGURATIONS if name == "validation" else TABLE_COLUMNS)
        part.add_argument("--detector", choices=detectors, default="DLSGAN")
        part.add_argument("--datasets", nargs="*")
        part.add_argument("--seeds", type=int, default=3 if name == "validation" else 10)
        part.add_argument("--max-rows", type=int, default=12000)
        part.add_argument("--n-jobs", type=int, default=2)
        part.add_argument(
            "--output", help=f"result file name (default: fit_speed_{name}[_<detector>])"
        )
        if name == "validation":
            part.add_argument("--fraction", type=float, default=0.3)
    args = parser.parse_args()
    if args.part == "ensemble" and args.output is None:
        args.output = "fit_speed_ensemble" + ("" if args.detector == "DLSGAN" else "_flow")
    if args.part in ("validation", "tables") and args.output is None:
        suffix = "" if args.detector == "DLSGAN" else "_" + args.detector.lower()
        args.output = f"fit_speed_{args.part}{suffix}"
    parts_run = {"images": images, "image-quality": image_quality, "table-step": _table_step}
    parts_run["optimizers"] = optimizers
    parts_run["ensemble"] = ensemble
    parts_run |= {"validation": validation, "tables": tables}
    parts_run[args.part](args)


if __name__ == "__main__":
    main()
