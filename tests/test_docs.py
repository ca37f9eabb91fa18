"""The API reference of the documentation site lists every public name of skood.

``docs/api.rst`` is written by hand (its sections group names for readers); this test fails
when a public function, class or constant is added without a page, or a listed name disappears.
"""

import importlib
import pkgutil
import re
from pathlib import Path

import pytest

import skood

API = Path(__file__).resolve().parents[1] / "docs" / "api.rst"


def _listed_objects() -> dict[int, str]:
    """Objects named in the autosummary tables of api.rst, by id."""
    listed: dict[int, str] = {}
    module = "skood"
    in_table = False
    for line in API.read_text().splitlines():
        if match := re.match(r"\.\. currentmodule:: (\S+)", line):
            module = match[1]
        elif line.startswith(".. autosummary::"):
            in_table = True
        elif in_table and re.match(r"   [A-Za-z_][\w.]*$", line):
            path = f"{module}.{line.strip()}"
            owner, name = path.rsplit(".", 1)
            obj = getattr(importlib.import_module(owner), name, None)
            if obj is None:  # a dotted name below the current module: skood.conformal.x
                parent, attribute = owner.rsplit(".", 1)
                obj = getattr(getattr(importlib.import_module(parent), attribute), name)
            listed[id(obj)] = path
        elif in_table and line and not line.startswith("   "):
            in_table = False
    return listed


def _public_modules():
    yield skood
    for info in pkgutil.walk_packages(skood.__path__, "skood."):
        if not any(part.startswith("_") for part in info.name.split(".")):
            yield importlib.import_module(info.name)


def test_every_public_name_has_an_api_page():
    listed = _listed_objects()
    missing = []
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if name.startswith("__") or type(obj).__name__ == "module":
                continue
            if id(obj) not in listed:
                missing.append(f"{module.__name__}.{name}")
    assert not missing, f"public names without an entry in docs/api.rst: {missing}"


def test_every_listed_name_exists():
    # _listed_objects raises AttributeError on a stale entry; every table has entries.
    assert len(_listed_objects()) > 50


@pytest.mark.parametrize(
    "name", [name for name in skood.__all__ if isinstance(getattr(skood, name), type)]
)
def test_public_estimators_have_an_examples_section(name):
    estimator = getattr(skood, name)
    if issubclass(estimator, Exception | Warning):
        pytest.skip("exceptions and warnings need no example")
    assert "\n    Examples\n    --------\n" in estimator.__doc__


def _entries(inventory, role: str) -> dict:
    items = inventory.data if hasattr(inventory, "data") else inventory
    return items[role]


def _uri(item) -> str:
    return item.uri if hasattr(item, "uri") else item[2]


@pytest.mark.parametrize(
    "key, base, name, role, page",
    [
        (
            "sklearn",
            "https://scikit-learn.org/stable",
            "sklearn.ensemble.IsolationForest",
            "py:class",
            "modules/generated/sklearn.ensemble.IsolationForest.html",
        ),
        ("sklearn", "https://scikit-learn.org/stable", "array-like", "std:term", "glossary.html"),
        (
            "skorch",
            "https://skorch.readthedocs.io/en/stable",
            "skorch.callbacks.ProgressBar",
            "py:class",
            "callbacks.html",
        ),
        (
            "torch",
            "https://docs.pytorch.org/docs/stable",
            "torch.nn.Module",
            "py:class",
            "generated/torch.nn.Module.html",
        ),
        (
            "numpy",
            "https://numpy.org/doc/stable",
            "numpy.ndarray",
            "py:class",
            "reference/generated/numpy.ndarray.html",
        ),
        ("python", "https://docs.python.org/3", "int", "py:class", "library/functions.html"),
    ],
)
def test_offline_inventories_load_in_sphinx(tmp_path, monkeypatch, key, base, name, role, page):
    # The site's fallback inventories must parse as Sphinx reads them and point at the
    # projects' real page addresses.
    inventory = pytest.importorskip("sphinx.util.inventory")
    monkeypatch.syspath_prepend(str(API.parent / "_ext"))
    offline = importlib.import_module("offline_inventories")
    package, entries = offline._PROJECTS[key]
    path = tmp_path / f"{key}.inv"
    offline.write_inventory(path, key, offline._version(package), list(entries()))
    loaded = inventory.InventoryFile.loads(path.read_bytes(), uri=base + "/")
    anchor = "term-array-like" if role == "std:term" else name
    assert _uri(_entries(loaded, role)[name]) == f"{base}/{page}#{anchor}"
