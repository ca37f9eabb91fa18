"""Shared helpers of the benchmark scripts: machine description, result files and progress."""

from __future__ import annotations

import json
import os
import platform
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).resolve().parent / "results"
# Named first in ``versions``; the rest follow in alphabetical order.
_CORE_NAMES = ["skood", "torch", "skorch", "scikit-learn", "numpy"]
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def data_home() -> Path:
    """``SKOOD_DATA`` when set, else the ``shared/data`` folder beside the repository."""
    return Path(os.environ.get("SKOOD_DATA", DEFAULT_DATA))


def pyplot():
    """``matplotlib.pyplot`` on the file-only Agg backend, or None without matplotlib."""
    try:
        import matplotlib
    except ImportError:
        return None
    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def _git(*args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=REPOSITORY, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    # Only trailing whitespace: porcelain lines start with a status column that may be blank.
    return result.stdout.rstrip() if result.returncode == 0 else None


def source_state() -> dict:
    """The commit of the code that ran, and whether the tree held changes beside it.

    ``clean`` is False when tracked files differ from the commit or untracked files sit in
    ``skood/`` or ``benchmarks/`` (result files excepted): then the commit alone does not say
    which code ran, and ``changed`` lists the files.
    """
    commit = _git("rev-parse", "HEAD")
    if commit is None:
        return {"commit": None, "clean": None, "changed": []}
    status = _git("status", "--porcelain", "--untracked-files=all", "--", "skood", "benchmarks",
                  "pyproject.toml") or ""  # fmt: skip
    changed = [
        line[3:]
        for line in status.splitlines()
        if line[3:] and not line[3:].startswith("benchmarks/results/")
    ]
    return {"commit": commit, "clean": not changed, "changed": changed}


def library_versions() -> dict:
    """Versions of every installed distribution whose modules this process has imported.

    The baselines' libraries are named whether imported yet or not: ``machine()`` runs before
    the detectors, and PyOD is imported only when its detectors are built.
    """
    distributions = metadata.packages_distributions()
    names = {"skood", "torch", "skorch", "scikit-learn", "numpy", "scipy", "joblib", "pyod"}
    for module in list(sys.modules):
        top = module.partition(".")[0]
        names.update(distributions.get(top, ()))
    versions = {}
    for name in sorted(names, key=str.lower):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def _processor() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.partition(":")[2].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _cpu_flags() -> list[str]:
    """The vector extensions that decide which kernels MKL, oneDNN and OpenBLAS run."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.partition(":")[2].split())
            break
    wanted = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16")
    return [flag for flag in wanted if flag in flags]


def numeric_libraries() -> dict:
    """Which math kernels ran: torch's CPU capability and MKL mode, numpy's BLAS build.

    Numbers of chaotic trainings (InvGAN on small tables) change with the kernels MKL picks
    for a processor, so two machines can disagree while each reproduces itself exactly.
    """
    import torch

    info = {
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "torch_mkl": torch.backends.mkl.is_available(),
        "MKL_CBWR": os.environ.get("MKL_CBWR"),
        "cpu_flags": _cpu_flags(),
    }
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return info
    info["threadpools"] = [
        {key: pool.get(key) for key in ("internal_api", "version", "architecture", "num_threads")}
        for pool in threadpool_info()
    ]
    return info


def _command() -> str:
    script, *rest = sys.argv
    path = Path(script).resolve()
    if path.is_relative_to(REPOSITORY):  # never a path of the machine, only the repository's
        script = path.relative_to(REPOSITORY).as_posix()
    else:
        script = path.name
    return shlex.join([Path(sys.executable).name, script, *rest])


def machine() -> dict:
    """What the numbers were measured on, with which code, libraries and command.

    Call it after the libraries are imported (``versions`` lists what this process has loaded).
    """
    import numpy
    import sklearn
    import skorch
    import torch

    import skood

    cuda = torch.cuda.is_available()
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": _command(),
        "source": source_state(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": _processor(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if cuda else None,
        "cuda_version": torch.version.cuda if cuda else None,
        "numeric_libraries": numeric_libraries(),
        "versions": {
            "skood": skood.__version__,
            "torch": torch.__version__,
            "skorch": skorch.__version__,
            "scikit-learn": sklearn.__version__,
            "numpy": numpy.__version__,
            **{k: v for k, v in library_versions().items() if k not in _CORE_NAMES},
        },
    }


def code_description(info: dict) -> str:
    """``commit abc1234`` (with ``, uncommitted changes`` when the tree was not clean)."""
    source = info.get("source")
    if not source or not source.get("commit"):
        return "commit not recorded"
    text = f"commit {source['commit'][:10]}"
    return text if source["clean"] else text + " with uncommitted changes"


def write_json(name: str, payload: dict) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def write_markdown(name: str, text: str) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    path.write_text(text)
    return path


def write_results(name: str, payload: dict, text: str) -> None:
    """Write ``results/<name>.json`` and ``.md`` and print the Markdown."""
    write_json(name, payload)
    write_markdown(name, text)
    print(text)


# The versions the Markdown names; the JSON has every library the run loaded.
_MARKDOWN_NAMES = [*_CORE_NAMES, "scipy", "joblib", "pyod", "pandas", "matplotlib"]


def machine_markdown(info: dict) -> str:
    versions = ", ".join(
        f"{name} {info['versions'][name]}" for name in _MARKDOWN_NAMES if name in info["versions"]
    )
    processor = f"{info['processor']}, " if info.get("processor") else ""
    return (
        f"Measured {info['date']} on {info['platform']} ({processor}{info['cpu_count']} CPUs, "
        f"torch threads {info['torch_threads']}, CUDA: {info['cuda'] or 'none'}), "
        f"{code_description(info)}.  \n"
        f"Versions: {versions}.  \nCommand: `{info['command']}`\n"
    )


# ----------------------------------------------------------------------------- progress
def _duration(seconds: float) -> str:
    # skood's format, the detectors' progress's; imported here, as scripts may set thread and
    # kernel settings before skood loads torch.
    from skood._progress import format_duration

    return format_duration(seconds)


def describe_run(detector=None, dataset=None, seed=None) -> str:
    """``"DLSGAN on odds:wbc, seed 3"``: what one run of a benchmark is (parts may be None)."""
    text = str(detector) if detector is not None else "run"
    if dataset is not None:
        text += f" on {dataset}"
    if seed is not None:
        text += f", seed {seed}"
    return text


class RunProgress:
    """One line per run of a benchmark (a detector on a set with a seed), flushed at once.

    Each line says which run, ``i/N``, the time since the benchmark started and an estimate of
    the time it has left (the mean time per finished run times the runs left; with runs in
    parallel processes that mean is of wall-clock time, so the estimate accounts for them).
    The detectors' own progress (``--verbose 2``) goes to stderr; these lines go to stdout,
    one every run, never a carriage return, so that a log stays readable.

    Sequential scripts wrap each run in :meth:`run`; scripts that run in parallel processes
    call :meth:`finished` as the results come back.
    """

    def __init__(self, total: int, stream=None) -> None:
        self.total = int(total)
        self.stream = stream
        self.n_started = 0
        self.n_finished = 0
        self.start = time.monotonic()

    def _status(self) -> str:
        elapsed = time.monotonic() - self.start
        if not self.n_finished:
            return f"elapsed {_duration(elapsed)}, time left not known yet"
        left = elapsed / self.n_finished * max(0, self.total - self.n_finished)
        return f"elapsed {_duration(elapsed)}, about {_duration(left)} left"

    def _print(self, text: str) -> None:
        print(text, file=sys.stdout if self.stream is None else self.stream, flush=True)

    def started(self, detector=None, dataset=None, seed=None) -> str:
        """Say that a run starts; return its description."""
        self.n_started += 1
        what = describe_run(detector, dataset, seed)
        self._print(f"[{self.n_started}/{self.total}] {what}: started | {self._status()}")
        return what

    def finished(self, detector=None, dataset=None, seed=None, *, seconds=None) -> None:
        """Say that a run ended (after ``seconds`` of its own, when known)."""
        self.n_finished += 1
        what = describe_run(detector, dataset, seed)
        took = "" if seconds is None else f" in {_duration(seconds)}"
        self._print(f"[{self.n_finished}/{self.total}] {what}: done{took} | {self._status()}")

    @contextmanager
    def run(self, detector=None, dataset=None, seed=None) -> Iterator[None]:
        """A run: its start line, then its end line with its duration."""
        self.started(detector, dataset, seed)
        start = time.monotonic()
        yield
        self.finished(detector, dataset, seed, seconds=time.monotonic() - start)


def parallel_runs(jobs, *, n_jobs: int, progress: RunProgress) -> list:
    """Run ``jobs``, pairs of ``(detector, dataset, seed)`` and a ``joblib.delayed`` call, on
    ``n_jobs`` processes; return the results in the order of ``jobs``, with a progress line as
    each comes back. ``n_jobs=1`` runs them here, one after the other (as joblib would), with
    a line as each starts too."""
    from joblib import Parallel

    jobs = list(jobs)
    if n_jobs == 1:
        collected = []
        for what, (function, args, kwargs) in jobs:
            with progress.run(*what):
                collected.append(function(*args, **kwargs))
        return collected
    results = Parallel(n_jobs=n_jobs, return_as="generator")(call for _, call in jobs)
    collected = []
    for (what, _), result in zip(jobs, results, strict=True):
        collected.append(result)
        progress.finished(*what)
    return collected
