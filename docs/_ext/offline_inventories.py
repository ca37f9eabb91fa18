"""Intersphinx inventories written from the installed packages, for builds without a network.

``intersphinx`` downloads each project's ``objects.inv``. Where the network is closed (CI), the
download fails and every link to scikit-learn, NumPy, PyTorch or skorch would silently become
plain text. This extension writes an inventory per project from the package that is installed,
using the URL scheme of that project's published documentation, and adds it as the fallback
location of the project's ``intersphinx_mapping`` entry: the real inventory is still preferred
when it can be fetched.

Only the objects whose page address follows from their name are listed (the public classes and
functions of scikit-learn, PyTorch's ``torch.nn``/``torch.optim``/``torch.func``, NumPy's
top-level functions, skorch's net, callbacks and history, Python's built-ins), plus a few
hand-checked ones.
"""

from __future__ import annotations

import builtins
import importlib
import inspect
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

Entry = tuple[str, str, str]  # (name, "domain:role", uri relative to the project's base URL)


def _public(module) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:
        names = [name for name in vars(module) if not name.startswith("_")]
    return [name for name in names if not name.startswith("_")]


def _role(obj) -> str | None:
    if inspect.isclass(obj):
        return "py:exception" if issubclass(obj, BaseException) else "py:class"
    if callable(obj):
        return "py:function"
    return None


def _methods(cls) -> Iterator[str]:
    for name, member in inspect.getmembers(cls):
        if not name.startswith("_") and callable(member):
            yield name


def _scikit_learn() -> Iterator[Entry]:
    import sklearn

    for submodule in _public(sklearn):
        try:
            module = importlib.import_module(f"sklearn.{submodule}")
        except ImportError:
            continue
        if not inspect.ismodule(module):
            continue
        for name in _public(module):
            try:
                obj = getattr(module, name, None)
            except ImportError:  # experimental names that need an explicit enable_* import
                continue
            role = _role(obj)
            if role is None or not getattr(obj, "__module__", "").startswith("sklearn"):
                continue  # modules without __all__ also hold the names they import
            full = f"sklearn.{submodule}.{name}"
            page = f"modules/generated/{full}.html"
            yield full, role, f"{page}#$"
            if role == "py:class":
                for method in _methods(obj):
                    yield f"{full}.{method}", "py:method", f"{page}#$"
    yield "array-like", "std:term", "glossary.html#term-array-like"


def _numpy() -> Iterator[Entry]:
    import numpy

    for name in _public(numpy):
        obj = getattr(numpy, name, None)
        if inspect.ismodule(obj) or not callable(obj):
            continue
        role = "py:class" if inspect.isclass(obj) else "py:function"
        yield f"numpy.{name}", role, f"reference/generated/numpy.{name}.html#$"
    yield "numpy.random.Generator", "py:class", "reference/random/generator.html#$"
    yield "numpy.random.default_rng", "py:function", "reference/random/generator.html#$"
    yield "numpy.random.RandomState", "py:class", "reference/random/legacy.html#$"


def _torch() -> Iterator[Entry]:
    for module_name in ("torch.nn", "torch.optim", "torch.func"):
        module = importlib.import_module(module_name)
        for name in _public(module):
            obj = getattr(module, name, None)
            role = _role(obj)
            if role is None or inspect.ismodule(obj):
                continue
            yield f"{module_name}.{name}", role, f"generated/{module_name}.{name}.html#$"
    yield "torch.Tensor", "py:class", "tensors.html#$"
    yield "torch.device", "py:class", "tensor_attributes.html#$"
    yield "torch.dtype", "py:class", "tensor_attributes.html#$"
    yield "torch.Generator", "py:class", "generated/torch.Generator.html#$"
    yield "torch.compile", "py:function", "generated/torch.compile.html#$"


def _skorch() -> Iterator[Entry]:
    import skorch
    import skorch.callbacks

    for alias in ("skorch.NeuralNet", "skorch.net.NeuralNet"):
        yield alias, "py:class", "net.html#skorch.net.NeuralNet"
    for method in _methods(skorch.NeuralNet):
        yield f"skorch.net.NeuralNet.{method}", "py:method", "net.html#$"
    for name in _public(skorch.callbacks):
        if inspect.isclass(getattr(skorch.callbacks, name, None)):
            yield f"skorch.callbacks.{name}", "py:class", "callbacks.html#$"
    yield "skorch.history.History", "py:class", "history.html#$"
    yield "skorch.dataset.Dataset", "py:class", "dataset.html#$"
    yield "skorch.dataset.ValidSplit", "py:class", "dataset.html#$"


def _python() -> Iterator[Entry]:
    for name in dir(builtins):
        obj = getattr(builtins, name)
        if name.startswith("_"):
            continue
        if inspect.isclass(obj) and issubclass(obj, BaseException):
            yield name, "py:exception", "library/exceptions.html#$"
        elif inspect.isclass(obj):
            yield name, "py:class", "library/functions.html#$"
        elif callable(obj):
            yield name, "py:function", "library/functions.html#$"
    for constant in ("None", "True", "False", "NotImplemented", "Ellipsis"):
        yield constant, "py:data", "library/constants.html#$"
    yield "pathlib.Path", "py:class", "library/pathlib.html#$"
    yield "os.PathLike", "py:class", "library/os.html#$"
    # Glossary terms, among them those numpydoc links types to ("sequence", "iterable", ...).
    for term in (
        "path-like object",
        "file object",
        "sequence",
        "iterable",
        "iterator",
        "mapping",
        "hashable",
        "generator",
        "context manager",
    ):
        yield term, "std:term", f"glossary.html#term-{term.replace(' ', '-')}"


def _pandas() -> Iterator[Entry]:
    importlib.import_module("pandas")  # only listed when installed

    for name in ("DataFrame", "Series", "Index"):
        yield f"pandas.{name}", "py:class", f"reference/api/pandas.{name}.html#$"


def _matplotlib() -> Iterator[Entry]:
    importlib.import_module("matplotlib")  # only listed when installed

    for name in ("matplotlib.figure.Figure", "matplotlib.axes.Axes"):
        yield name, "py:class", f"api/_as_gen/{name}.html#$"


_PROJECTS: dict[str, tuple[str, Callable[[], Iterator[Entry]]]] = {
    "python": ("builtins", _python),
    "numpy": ("numpy", _numpy),
    "sklearn": ("sklearn", _scikit_learn),
    "torch": ("torch", _torch),
    "skorch": ("skorch", _skorch),
    "pandas": ("pandas", _pandas),
    "matplotlib": ("matplotlib", _matplotlib),
}


def _version(package: str) -> str:
    if package == "builtins":
        import platform

        return platform.python_version()
    return str(getattr(importlib.import_module(package), "__version__", ""))


def write_inventory(path: Path, project: str, version: str, entries: list[Entry]) -> None:
    """Write ``entries`` as a Sphinx inventory (format version 2) at ``path``."""
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        f"# Version: {version}\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    seen: set[tuple[str, str]] = set()
    lines = []
    for name, role, uri in entries:
        if (name, role) in seen or " " in name and not role.startswith("std:"):
            continue
        seen.add((name, role))
        lines.append(f"{name} {role} 1 {uri} -\n")
    path.write_bytes(header.encode() + zlib.compress("".join(lines).encode()))


def _add_fallbacks(app: Sphinx, config: Config) -> None:
    folder = Path(app.doctreedir).parent / "offline_inventories"
    folder.mkdir(parents=True, exist_ok=True)
    mapping = dict(config.intersphinx_mapping)
    for key, (package, entries) in _PROJECTS.items():
        if key not in mapping:
            continue
        try:
            listed = list(entries())
        except ImportError:  # an optional project that is not installed keeps only its URL
            continue
        path = folder / f"{key}.inv"
        write_inventory(path, key, _version(package), listed)
        url, locations = mapping[key]
        if locations is None:
            locations = (None,)
        elif isinstance(locations, str):
            locations = (locations,)
        mapping[key] = (url, (*locations, str(path)))
    config.intersphinx_mapping = mapping


def setup(app: Sphinx) -> dict:
    # Before intersphinx normalises the mapping (its handler runs at priority 800).
    app.connect("config-inited", _add_fallbacks, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
