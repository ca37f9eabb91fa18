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

With ``--output STEM`` the comparison of every cell is written to ``results/STEM.json`` and
``.md`` (with this machine and commit), so that a reproduction check is itself a result.

Usage::

    python benchmarks/reproduce.py tabular --dataset adbench:Hepatitis --column InvGAN --seeds 0 1
    python benchmarks/reproduce.py tabular --dataset arrhythmia --column "DLSGAN NLP"
    python benchmarks/reproduce.py tabular --column InvGAN --max-rows 2000 --output reproduce_invgan
    python benchmarks/reproduce.py tabular --column InvGAN --rerun-in tabular_a tabular_b

The last form reruns nothing: it compares the file with the cells that ``tabular.py --add-to``
runs wrote into copies of it (``tabular.py --merge`` then moves them in).
"""

from __future__ import annotations

import argparse
import json
import sys

import tabular
from _common import RESULTS, code_description, machine, machine_markdown, write_results

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


def check_cell(payload: dict, name: str, column: str, seeds: list[int], tolerance: float):
    """Rerun ``seeds`` of one cell; returns the printed lines and one record per seed."""
    result = payload["datasets"][name]
    evaluated = result.get("seeds") or tabular.evaluated_seeds(name, result["n_seeds"])
    unknown = sorted(set(seeds) - set(evaluated))
    if unknown:
        raise ValueError(f"seeds {unknown} were not evaluated on {name} (evaluated: {evaluated})")
    run = recording_run(payload, result, column)
    current = machine()
    lines = [f"{name}, {column}"]
    if run is None:
        lines.append("  recorded by: not stated in the file (written before runs recorded it)")
    else:
        lines.append(f"  recorded by: `{run['command']}` ({run['date']}, {code_description(run)})")
        changed = sorted(
            key for key in {**run["versions"], **current["versions"]}
            if run["versions"].get(key) != current["versions"].get(key)
        )  # fmt: skip
        if changed:
            lines.append(f"  library versions differ: {', '.join(changed)}")
    per_seed = result["detectors"][column]["per_seed"]
    gan_params = payload.get("gan_params", {})
    records = []
    for seed in seeds:
        index = evaluated.index(seed)
        recorded = {metric: per_seed[metric][index] for metric in METRICS}
        rerun = tabular.run_seed(name, seed, gan_params, [tabular.column_detector(column)])[column]
        recorded_fit = per_seed["fit_s"][index]
        lines.append(f"seed {seed} (fit {rerun['fit_s']:.1f} s, recorded {recorded_fit:.1f} s)")
        table = compare(recorded, rerun, tolerance)
        lines += table
        records.append(
            {
                "dataset": name,
                "column": column,
                "seed": seed,
                "recorded": recorded,
                "rerun": {metric: rerun[metric] for metric in METRICS},
                "reproduced": not any(line.endswith("DIFFERS") for line in table),
            }
        )
    return lines, records


def reruns_in_copies(payload: dict, column: str, stems: list[str], tolerance: float):
    """Records as :func:`check_cell` makes, from reruns that ``tabular.py --add-to`` made in
    copies of the result file (runs side by side): every cell of ``column`` that a copy's own
    runs wrote, against the value the file recorded. Returns the records and those runs."""
    records, runs = [], []
    for stem in stems:
        copy_ = json.loads((RESULTS / f"{stem}.json").read_text())
        own, cells = tabular.copy_cells(payload, copy_)
        runs += [copy_["machine"]["added"][index] for index in own]
        for name, cell_column, _ in cells:
            if cell_column != column:
                continue
            result = copy_["datasets"][name]
            recorded = payload["datasets"][name]["detectors"][column]["per_seed"]
            rerun = result["detectors"][column]["per_seed"]
            seeds = result.get("seeds") or tabular.evaluated_seeds(name, result["n_seeds"])
            for index, seed in enumerate(seeds):
                before = {metric: recorded[metric][index] for metric in METRICS}
                after = {metric: rerun[metric][index] for metric in METRICS}
                table = compare(before, after, tolerance)
                records.append(
                    {
                        "dataset": name,
                        "column": column,
                        "seed": seed,
                        "recorded": before,
                        "rerun": after,
                        "reproduced": not any(line.endswith("DIFFERS") for line in table),
                    }
                )
    return records, runs


def _report(payload: dict, stem: str, records: list[dict], info: dict) -> str:
    lines = [f"# Reproduction check of {stem}.json", "", machine_markdown(info), ""]
    lines += ["| dataset | column | seed | recorded ROC AUC | rerun ROC AUC | reproduced |"]
    lines += ["|---|---|---|---|---|---|"]
    for record in records:
        lines.append(
            f"| {record['dataset']} | {record['column']} | {record['seed']} "
            f"| {record['recorded']['roc_auc']:.6f} | {record['rerun']['roc_auc']:.6f} "
            f"| {'yes' if record['reproduced'] else '**no**'} |"
        )
    reproduced = sum(record["reproduced"] for record in records)
    lines += ["", f"{reproduced} of {len(records)} cells reproduced exactly "
              "(ROC AUC, average precision and F1 within the tolerance).", ""]  # fmt: skip
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("stem", help="result file stem in benchmarks/results, e.g. tabular")
    parser.add_argument(
        "--dataset", nargs="+", default=None,
        help="e.g. adbench:Hepatitis arrhythmia; default: every set that has the column",
    )  # fmt: skip
    parser.add_argument("--column", required=True, help='e.g. InvGAN, "DLSGAN NLP", ECOD')
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--max-rows", type=int, default=None, help="skip larger sets")
    parser.add_argument("--tolerance", type=float, default=1e-9)
    parser.add_argument("--output", default=None, help="write the comparison to results/STEM")
    parser.add_argument(
        "--rerun-in", nargs="+", default=None, metavar="STEM",
        help="rerun nothing: compare with the cells tabular.py --add-to rewrote in these copies",
    )  # fmt: skip
    args = parser.parse_args(argv)

    payload = json.loads((RESULTS / f"{args.stem}.json").read_text())
    if args.rerun_in:
        records, runs = reruns_in_copies(payload, args.column, args.rerun_in, args.tolerance)
        for record in records:
            print(f"{record['dataset']} seed {record['seed']}: recorded "
                  f"{record['recorded']['roc_auc']:.6f}, rerun {record['rerun']['roc_auc']:.6f}"
                  f"{'' if record['reproduced'] else '  DIFFERS'}")  # fmt: skip
        if args.output and runs:
            report = {"machine": runs[0], "runs": runs, "stem": args.stem}
            text = _report(payload, args.stem, records, runs[0])
            commands = "".join(f"- `{run['command']}`\n" for run in runs)
            text += f"\nReruns made by (copies of the file, side by side):\n\n{commands}"
            write_results(args.output, {**report, "cells": records}, text)
        return int(not all(record["reproduced"] for record in records))
    datasets = payload["datasets"]
    names = [n if ":" in n else f"odds:{n}" for n in (args.dataset or list(datasets))]
    for name in names:
        if name not in datasets:
            parser.error(f"{name} is not in {args.stem}.json")
        if args.dataset and args.column not in datasets[name]["detectors"]:
            parser.error(f"{args.column!r} is not a column of {name}")
    names = [
        name
        for name in names
        if args.column in datasets[name]["detectors"]
        and (args.max_rows is None or datasets[name]["n_samples"] <= args.max_rows)
    ]
    info = machine()
    print(f"{args.stem}.json; rerun with {code_description(info)}")
    records = []
    for name in names:
        try:
            lines, cell = check_cell(payload, name, args.column, args.seeds, args.tolerance)
        except ValueError as error:
            parser.error(str(error))
        records += cell
        print("\n".join(lines), flush=True)
    if args.output:
        report = {"machine": info, "stem": args.stem, "tolerance": args.tolerance}
        write_results(args.output, {**report, "cells": records}, _report(payload, args.stem,
                      records, info))  # fmt: skip
    differs = not all(record["reproduced"] for record in records)
    print("differs" if differs else "reproduced")
    return int(differs)


if __name__ == "__main__":
    sys.exit(main())
