"""Scoring throughput on 1,000,000 Arrhythmia-shaped rows (274 features), with peak memory.

Each detector runs in its own subprocess: it is fitted on the real Arrhythmia data, then scores
``--rows`` synthetic rows drawn around the training distribution. Reported: rows per second of
``score_samples`` and the process's peak resident memory above what it held before scoring
(the float64 input alone is ``rows * 274 * 8`` bytes and is counted in neither).

Usage::

    python benchmarks/throughput.py --rows 1000000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np
from _common import machine, machine_markdown, write_json, write_markdown

DETECTORS = ("DLSGANDetector (NLP)", "DLSGANDetector (reconstruction)", "IsolationForest")


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker(name: str, rows: int) -> dict:
    from sklearn.ensemble import IsolationForest

    from skood import DLSGANDetector
    from skood.datasets import load_arrhythmia

    X, _ = load_arrhythmia(return_X_y=True)
    if name.startswith("DLSGAN"):
        score_type = "nlp" if "NLP" in name else "reconstruction"
        detector = DLSGANDetector(score_type=score_type, random_state=0, device="cpu")
    else:
        detector = IsolationForest(random_state=0)
    detector.fit(X)
    rng = np.random.default_rng(0)
    # Filled in blocks so that making the input leaves no temporaries in the peak.
    big = np.empty((rows, X.shape[1]))
    mean, std = X.mean(0), X.std(0)
    for start in range(0, rows, 50_000):
        block = big[start : start + 50_000]
        rng.standard_normal(out=block)
        block *= std
        block += mean
    detector.score_samples(big[:1000])  # warm-up
    before = _peak_rss_mb()
    start = time.perf_counter()
    scores = detector.score_samples(big)
    elapsed = time.perf_counter() - start
    assert np.all(np.isfinite(scores))
    return {
        "detector": name,
        "rows": rows,
        "seconds": elapsed,
        "rows_per_s": rows / elapsed,
        "peak_rss_mb": _peak_rss_mb(),
        "extra_peak_mb": _peak_rss_mb() - before,
        "input_mb": big.nbytes / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.rows)))
        return
    results = []
    for name in DETECTORS:
        output = subprocess.run(
            [sys.executable, __file__, "--worker", name, "--rows", str(args.rows)],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(results[-1], flush=True)
    forest = next(r for r in results if r["detector"] == "IsolationForest")
    payload = {"machine": machine(), "results": results}
    write_json("throughput", payload)
    lines = [
        "# Scoring throughput: 1,000,000 x 274 rows on CPU",
        "",
        machine_markdown(payload["machine"]),
        "",
        "| detector | seconds | rows / s | vs IsolationForest | peak memory (MB) | "
        "peak above input + model (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for r in results:
        speedup = forest["seconds"] / r["seconds"]
        lines.append(
            f"| {r['detector']} | {r['seconds']:.1f} | {r['rows_per_s']:,.0f} | "
            f"{speedup:.2f}x | {r['peak_rss_mb']:.0f} | {r['extra_peak_mb']:.0f} |"
        )
    lines.append("")
    lines.append(
        f"Input: {results[0]['input_mb']:.0f} MB of float64 held by every process before scoring "
        "(not counted in the extra peak)."
    )
    text = "\n".join(lines) + "\n"
    write_markdown("throughput", text)
    print(text)


if __name__ == "__main__":
    main()
