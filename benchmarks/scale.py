"""Scale-out with Dask: a grid search on a 2-worker cluster, and scoring more rows than memory.

Two parts, one run (``--part`` picks one):

* ``search``: ``GridSearchCV`` over 16 DLSGANDetector configurations (latent 8/16/32/64,
  hidden layers (64,) or (128, 128), R1 weight 0.1 or 1) in a StandardScaler pipeline on the
  embedded Arrhythmia data, 3 stratified folds, scored by ROC AUC: sequentially in this process
  (torch on every core), then under ``joblib.parallel_config(backend="dask")`` on a
  ``LocalCluster`` of 2 worker processes with one thread each. Wall time of both, and whether
  they found the same scores and best parameters.
* ``score``: a DLSGANDetector fitted on Arrhythmia scores ``--rows`` rows (10,000,000 by
  default) of 274 standard-normal features drawn lazily on the workers as a dask array of
  100,000-row chunks (21.9 GB as float64, never held whole anywhere), on the same cluster; the
  peak resident memory of each worker process is sampled while it runs. Beside it, NumPy's
  path (``score_samples`` on an in-memory array) on ``--numpy-rows`` rows, the largest size
  this machine holds comfortably next to everything else (2,000,000 rows, 4.4 GB).

Usage::

    python benchmarks/scale.py
    python benchmarks/scale.py --part score --rows 1000000
"""

from __future__ import annotations

import argparse
import threading
import time

import numpy as np
import torch
from _common import machine, machine_markdown, write_results

from skood import DLSGANDetector
from skood.datasets import load_arrhythmia
from skood.metrics import outlier_auroc_scorer

GRID = {
    "dlsgandetector__latent_dim": [8, 16, 32, 64],
    "dlsgandetector__hidden_dims": [(64,), (128, 128)],
    "dlsgandetector__lambda_r1": [0.1, 1.0],
}
CHUNK_ROWS = 100_000
# NumPy rows also scored through dask, to compare the two paths' scores.
CHECK_ROWS = 40_000


def _cluster():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    return cluster, Client(cluster)


def search_part(client) -> dict:
    import joblib
    from sklearn.model_selection import GridSearchCV, StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_arrhythmia(return_X_y=True)
    search = {
        "estimator": make_pipeline(StandardScaler(), DLSGANDetector(device="cpu", random_state=0)),
        "param_grid": GRID,
        "scoring": outlier_auroc_scorer,
        "cv": StratifiedKFold(3, shuffle=True, random_state=0),
    }
    started = time.perf_counter()
    sequential = GridSearchCV(**search).fit(X, y)
    sequential_seconds = time.perf_counter() - started

    started = time.perf_counter()
    with joblib.parallel_config(backend="dask"):
        distributed = GridSearchCV(**search, n_jobs=-1).fit(X, y)
    distributed_seconds = time.perf_counter() - started

    difference = np.abs(
        distributed.cv_results_["mean_test_score"] - sequential.cv_results_["mean_test_score"]
    )
    return {
        "n_configurations": len(sequential.cv_results_["params"]),
        "folds": 3,
        "sequential_seconds": sequential_seconds,
        "sequential_torch_threads": torch.get_num_threads(),
        "dask_seconds": distributed_seconds,
        "speed_up": sequential_seconds / distributed_seconds,
        "max_score_difference": float(difference.max()),
        "same_best_params": distributed.best_params_ == sequential.best_params_,
        "best_params": {key: str(value) for key, value in sequential.best_params_.items()},
        "best_score": float(sequential.best_score_),
    }


def _worker_rss() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def _sample_peaks(client, done: threading.Event, peaks: dict) -> None:
    while not done.is_set():
        for worker, rss in client.run(_worker_rss).items():
            peaks[worker] = max(peaks.get(worker, 0), rss)
        done.wait(0.5)


def score_part(client, rows: int, numpy_rows: int) -> dict:
    import dask.array as da
    from sklearn.preprocessing import StandardScaler

    X, _ = load_arrhythmia(return_X_y=True)
    scaler = StandardScaler().fit(X)
    detector = DLSGANDetector(device="cpu", random_state=0).fit(scaler.transform(X))

    lazy_rows = da.random.RandomState(0).standard_normal(
        (rows, X.shape[1]), chunks=(CHUNK_ROWS, X.shape[1])
    )
    lazy_scores = detector.score_samples(lazy_rows)
    # Drawing the rows is part of the dask run; timed alone to tell it from the scoring.
    started = time.perf_counter()
    client.compute(lazy_rows.sum(), sync=True)
    generation_seconds = time.perf_counter() - started
    baseline = dict(client.run(_worker_rss))
    peaks: dict = {}
    done = threading.Event()
    sampler = threading.Thread(target=_sample_peaks, args=(client, done, peaks), daemon=True)
    sampler.start()
    started = time.perf_counter()
    # Reduced on the workers: only two numbers per chunk come back.
    summary = client.compute([lazy_scores.mean(), lazy_scores.min()], sync=True)
    dask_seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    finite = bool(np.isfinite(summary).all())

    in_memory = np.random.RandomState(0).standard_normal((numpy_rows, X.shape[1]))
    started = time.perf_counter()
    numpy_scores = detector.score_samples(in_memory)
    numpy_seconds = time.perf_counter() - started
    # The same rows through dask, for equality with NumPy's scores.
    check_rows = in_memory[:CHECK_ROWS]
    through_dask = client.compute(
        detector.score_samples(da.from_array(check_rows, chunks=(CHECK_ROWS // 4, -1))), sync=True
    )
    return {
        "rows": rows,
        "features": int(X.shape[1]),
        "chunk_rows": CHUNK_ROWS,
        "chunk_megabytes": CHUNK_ROWS * X.shape[1] * 8 / 1e6,
        "input_gigabytes": rows * X.shape[1] * 8 / 1e9,
        "dask_seconds": dask_seconds,
        "dask_rows_per_second": rows / dask_seconds,
        "generation_seconds": generation_seconds,
        "worker_baseline_megabytes": {str(k): v / 1e6 for k, v in baseline.items()},
        "worker_peak_megabytes": {str(k): v / 1e6 for k, v in peaks.items()},
        "scores_finite": finite,
        "score_mean": float(summary[0]),
        "numpy_rows": numpy_rows,
        "numpy_seconds": numpy_seconds,
        "numpy_rows_per_second": numpy_rows / numpy_seconds,
        "numpy_input_gigabytes": in_memory.nbytes / 1e9,
        "numpy_torch_threads": torch.get_num_threads(),
        "dask_equals_numpy_max_relative_difference": float(
            np.max(
                np.abs(through_dask - numpy_scores[:CHECK_ROWS]) / np.abs(numpy_scores[:CHECK_ROWS])
            )
        ),
    }


def _markdown(info: dict, results: dict) -> str:
    text = "# Scale-out with Dask\n\n" + machine_markdown(info) + "\n"
    if "search" in results:
        s = results["search"]
        text += (
            "## Grid search (Arrhythmia, 16 DLSGAN configurations, 3 folds: 48 fits)\n\n"
            "| run | wall time |\n|---|---|\n"
            f"| sequential, torch {s['sequential_torch_threads']} threads | "
            f"{s['sequential_seconds']:.1f} s |\n"
            f"| joblib dask backend, LocalCluster 2 workers x 1 thread | "
            f"{s['dask_seconds']:.1f} s |\n\n"
            f"Speed-up {s['speed_up']:.2f}x on 2 cores. Largest difference of a mean CV ROC AUC "
            f"between the two: {s['max_score_difference']:.2e}; same best parameters: "
            f"{s['same_best_params']} ({s['best_params']}, ROC AUC {s['best_score']:.3f}).\n\n"
        )
    if "score" in results:
        r = results["score"]
        peaks = ", ".join(f"{v:.0f} MB" for v in r["worker_peak_megabytes"].values())
        base = ", ".join(f"{v:.0f} MB" for v in r["worker_baseline_megabytes"].values())
        text += (
            f"## Scoring {r['rows']:,} x {r['features']} rows from a dask array\n\n"
            f"Chunks of {r['chunk_rows']:,} rows ({r['chunk_megabytes']:.0f} MB); the whole "
            f"input would be {r['input_gigabytes']:.1f} GB.\n\n"
            "| path | rows | wall time | rows/s | memory |\n|---|---|---|---|---|\n"
            f"| dask, 2 workers x 1 thread | {r['rows']:,} | {r['dask_seconds']:.1f} s | "
            f"{r['dask_rows_per_second']:,.0f} | peak per worker {peaks} (idle {base}) |\n"
            f"| NumPy in memory, torch {r['numpy_torch_threads']} threads | "
            f"{r['numpy_rows']:,} | {r['numpy_seconds']:.1f} s | "
            f"{r['numpy_rows_per_second']:,.0f} | input alone "
            f"{r['numpy_input_gigabytes']:.1f} GB |\n\n"
            "The dask time includes drawing the rows on the workers: "
            f"{r['generation_seconds']:.1f} s of it alone (a sum over the lazy array). "
            f"Scores finite: {r['scores_finite']}. The first {CHECK_ROWS:,} NumPy rows scored "
            "through dask agree with NumPy's scores to a relative "
            f"{r['dask_equals_numpy_max_relative_difference']:.1e}.\n"
        )
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("search", "score", "both"), default="both")
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--numpy-rows", type=int, default=2_000_000)
    args = parser.parse_args()

    info = machine()
    cluster, client = _cluster()
    results = {}
    try:
        if args.part in ("search", "both"):
            results["search"] = search_part(client)
        if args.part in ("score", "both"):
            results["score"] = score_part(client, args.rows, args.numpy_rows)
    finally:
        client.close()
        cluster.close()
    name = "scale" if args.part == "both" else f"scale_{args.part}"
    write_results(name, {"machine": info, **results}, _markdown(info, results))


if __name__ == "__main__":
    main()
