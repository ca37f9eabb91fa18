"""Rerun one cell of a tabular result file and compare it with what the file recorded.

A cell is one dataset, one column (a detector and score) and one or more seeds of a file that
``tabular.py`` wrote. The seeds are rerun with the protocol, split and parameters of the file,
and ROC AUC, average precision and F1 are compared with the recorded per-seed values (fit times
are printed, never compared). The command exits with status 1 when a value differs by more than
``--tolerance``.

Training is deterministic for a given code, library versions and processor: a difference means
one of those changed. The file says which run made each column (``recorded_by``, for files
written since runs record their commit) and with which commit and library versions; both are
printed beside the current ones.

Usage::

    python benchmarks/reproduce.py tabular --dataset adbench:Hepatitis --column InvGAN --seeds 0 1
    python benchmarks/reproduce.py tabular --dataset arrhythmia --column "DLSGAN NLP"
"""

from __future__ import annotations

import argparse
import json
import sys

import tabular
from _common import RESULTS, code_description, machine

METRICS = ("roc_auc", "ap", "f1")


def recording_run(payload: dict, result: dict, column: str) -> dict | None:
    """The ``machine`` entry of the run that wrote ``column``, where the file says."""
    where = result.get("recorded_by", {}).get(column)
    if where is None:
        return None
    if where == "machine":
        return payload["machine"]
    return payload["machine"]["added"][int(where.partition("/")[2])]


def compare(recorded: dict, rerun: dict, tolerance: float) -> list[str]:
    """Lines of a table, one per metric; a trailing ``DIFFERS`` marks a value out of tolerance."""
    lines = []
    for metric in METRICS:
        difference = abs(rerun[metric] - recorded[metric])
        flag = "  DIFFERS" if difference > tolerance else ""
        lines.append(
            f"  {metric:8s} recorded {recorded[metric]:.6f}  rerun {rerun[metric]:.6f}  "
            f"difference {difference:.2e}{flag}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stem", help="result file stem in benchmarks/results, e.g. tabular")
    parser.add_argument("--dataset", required=True, help="e.g. adbench:Hepatitis or arrhythmia")
    parser.add_argument("--column", required=True, help='e.g. InvGAN, "DLSGAN NLP", ECOD')
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--tolerance", type=float, default=1e-9)
    args = parser.parse_args(argv)

    payload = json.loads((RESULTS / f"{args.stem}.json").read_text())
    name = args.dataset if ":" in args.dataset else f"odds:{args.dataset}"
    if name not in payload["datasets"]:
        parser.error(f"{name} is not in {args.stem}.json")
    result = payload["datasets"][name]
    if args.column not in result["detectors"]:
        parser.error(f"{args.column!r} is not a column of {name}: {sorted(result['detectors'])}")
    seeds = result.get("seeds") or tabular.evaluated_seeds(name, result["n_seeds"])
    unknown = sorted(set(args.seeds) - set(seeds))
    if unknown:
        parser.error(f"seeds {unknown} were not evaluated on {name} (evaluated: {seeds})")

    run = recording_run(payload, result, args.column)
    current = machine()
    print(f"{name}, {args.column}, {args.stem}.json")
    if run is None:
        print("  recorded by: not stated in the file (written before runs recorded their commit)")
    else:
        print(f"  recorded by: `{run['command']}` ({run['date']}, {code_description(run)})")
    print(f"  rerun with:  {code_description(current)}")
    if run is not None and run["versions"] != current["versions"]:
        changed = sorted(
            key for key in {**run["versions"], **current["versions"]}
            if run["versions"].get(key) != current["versions"].get(key)
        )  # fmt: skip
        print(f"  library versions differ: {', '.join(changed)}")

    per_seed = result["detectors"][args.column]["per_seed"]
    detector = tabular.column_detector(args.column)
    gan_params = payload.get("gan_params", {})
    differs = False
    for seed in args.seeds:
        index = seeds.index(seed)
        recorded = {metric: per_seed[metric][index] for metric in METRICS}
        rows = tabular.run_seed(name, seed, gan_params, [detector])
        rerun = rows[args.column]
        print(
            f"seed {seed} (fit {rerun['fit_s']:.1f} s, recorded {per_seed['fit_s'][index]:.1f} s)"
        )
        lines = compare(recorded, rerun, args.tolerance)
        print("\n".join(lines))
        differs |= any(line.endswith("DIFFERS") for line in lines)
    print("differs" if differs else "reproduced")
    return int(differs)


if __name__ == "__main__":
    sys.exit(main())
