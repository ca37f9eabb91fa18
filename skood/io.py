"""Persistence that never runs code from a file: :func:`save` and :func:`load`.

``pickle`` (and ``joblib``, which builds on it) reconstructs whatever a file names, so loading a
pickle runs any code its author chose. A ``skood.io`` file holds data only: one zip archive
with

* ``manifest.json``: the format, the versions of skood, PyTorch, scikit-learn and skorch that
  wrote it, the detector's class name and parameters, its fitted attributes as typed JSON, the
  layout of its skorch net, and the SHA-256 digest and size of every other entry;
* ``arrays/<n>.npy``: the fitted NumPy arrays, written and read with ``allow_pickle=False``;
* ``tensors/<n>.safetensors``: per skorch net, the state of every network, criterion and
  optimizer (safetensors holds raw tensor data and a JSON header, nothing executable).

Loading rebuilds the detector from an allow-list: the class name must be one of skood's
detectors and every class a net refers to (optimizer, loss, batch iterator, callback) one of a
fixed set, looked up by name in a table, never imported from a path given by the file. The
networks are rebuilt from the detector's parameters by skood's own code, and the stored tensors
must match them key for key, in shape and in dtype. Anything else is refused with
:class:`~skood.exceptions.FileVerificationError`.

Requires ``safetensors``: ``pip install "skood[io]"``. See ``docs/persistence.md``.
"""

from __future__ import annotations

import functools
import hashlib
import io as _bytes_io
import json
import os
import uuid
import warnings
import zipfile
from collections.abc import Callable, Mapping
from pathlib import Path
from types import ModuleType
from typing import IO, Any

import numpy as np
import torch
from sklearn.utils._param_validation import InvalidParameterError
from skorch.dataset import Dataset
from skorch.exceptions import DeviceWarning
from skorch.history import History
from skorch.net import NeuralNet

from ._training import EveryOptimizerLRScheduler, FiniteGradientNormClipping, InMemoryBatches
from ._versioning import compared_versions, recorded_versions, warn_if_inconsistent
from .autoencoder import AutoencoderDetector
from .base import BaseDetector, resolve_device
from .conditional import ConditionalDLSGAN
from .dlsgan import DLSGANDetector
from .dmr import DMRDetector, augment_images
from .exceptions import FileVerificationError, InconsistentSkoodVersionWarning
from .flow import ApproximateMassFlowDetector
from .invgan import InvGANDetector
from .posthoc import PostHocDetector

__all__ = [
    "FORMAT_VERSION",
    "FileVerificationError",
    "InconsistentSkoodVersionWarning",
    "load",
    "save",
]

#: Version of the archive layout that :func:`save` writes; :func:`load` reads this one only.
FORMAT_VERSION = 1
_FORMAT = "skood.io"
_MANIFEST = "manifest.json"
_TAG = "__type__"
_MANIFEST_KEYS = {"format", "format_version", "versions", "entries", "estimator"}
# The fitted attributes every fitted detector has (BaseDetector.fit sets them).
_CORE_FITTED = ("n_features_in_", "input_mean_", "input_scale_", "net_", "offset_")
# Archive entries are read into memory; a larger one is refused before it is read.
_MAX_ENTRY_BYTES = 1 << 36
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # fixed timestamps: the same detector gives the same bytes


# ---------------------------------------------------------------------- allow-lists
# Detector classes by the name the manifest gives. Each rebuilds the networks of its fitted
# skorch net from its parameters and fitted attributes with its own ``_build_networks``.
_DETECTORS: dict[str, type] = {
    cls.__name__: cls
    for cls in (
        DLSGANDetector,
        AutoencoderDetector,
        ApproximateMassFlowDetector,
        InvGANDetector,
        PostHocDetector,
        DMRDetector,
        ConditionalDLSGAN,
    )
}
# The skorch net class each detector's fitted net is (its own ``_net_class``), by the name the
# manifest gives.
_NETS_OF: dict[type, type] = {cls: cls._net_class for cls in _DETECTORS.values()}
_NETS: dict[str, type] = {f"{net.__module__}.{net.__name__}": net for net in _NETS_OF.values()}
# Classes and functions that may appear as values of a net's parameters.
_OBJECTS: dict[str, object] = {
    "torch.optim.Adam": torch.optim.Adam,
    "torch.optim.AdamW": torch.optim.AdamW,
    "torch.optim.SGD": torch.optim.SGD,
    "torch.optim.lr_scheduler.CosineAnnealingLR": torch.optim.lr_scheduler.CosineAnnealingLR,
    "torch.optim.lr_scheduler.ExponentialLR": torch.optim.lr_scheduler.ExponentialLR,
    "torch.nn.CrossEntropyLoss": torch.nn.CrossEntropyLoss,
    "skorch.dataset.Dataset": Dataset,
    "skood._training.InMemoryBatches": InMemoryBatches,
    "skood.dmr.augment_images": augment_images,
}
_CALLBACKS: dict[str, type] = {
    "skood._training.EveryOptimizerLRScheduler": EveryOptimizerLRScheduler,
    "skood._training.FiniteGradientNormClipping": FiniteGradientNormClipping,
}


def _name_of(table: Mapping[str, object], value: object) -> str | None:
    return next((name for name, item in table.items() if item is value), None)


# ---------------------------------------------------------------------- public API
def _require_safetensors() -> ModuleType:
    """``safetensors.torch``, or an ImportError that says how to install it."""
    try:
        import safetensors.torch
    except ImportError as error:
        raise ImportError(
            "skood.io stores network weights with safetensors, which is not installed: "
            'pip install "skood[io]" (or pip install safetensors).'
        ) from error
    return safetensors.torch


def save(detector: BaseDetector, path: str | os.PathLike | IO[bytes]) -> None:
    """Save a skood detector to a file that can be loaded without running any code from it.

    The file is a zip archive of plain data: a JSON manifest (class name, parameters, fitted
    attributes, the skood, PyTorch, scikit-learn and skorch versions, and a SHA-256 digest of
    every other entry), NumPy arrays as ``.npy`` written without pickle, and the network,
    criterion and optimizer states as safetensors. Optimizer moments, learning rates, the
    history and the random streams are stored too, so ``warm_start`` continues after
    :func:`load` as it would have without saving.

    Parameters
    ----------
    detector : BaseDetector
        A skood detector (fitted or not), of one of the classes skood ships. A user's own
        classifier module (``classifier=`` of :class:`~skood.posthoc.PostHocDetector` and
        :class:`~skood.dmr.DMRDetector`) is arbitrary code and cannot be stored this way.
    path : str, path-like or binary file object
        Where to write; an existing file is replaced once the new one is complete. The
        extension is free (``.skood`` is a good choice).

    Raises
    ------
    TypeError
        When the detector, or a value among its parameters or fitted attributes, is of a type
        the format cannot store without code (the message names it).
    ImportError
        When ``safetensors`` is not installed: ``pip install "skood[io]"``.

    See Also
    --------
    load : Read the detector back.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skood import DLSGANDetector
    >>> import skood.io
    >>> X = np.random.RandomState(0).normal(size=(100, 3))
    >>> detector = DLSGANDetector(latent_dim=2, hidden_dims=(8,), max_epochs=1, random_state=0)
    >>> detector = detector.fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "detector.skood")
    ...     skood.io.save(detector, path)
    ...     restored = skood.io.load(path)
    >>> bool(np.array_equal(restored.score_samples(X), detector.score_samples(X)))
    True
    """
    safetensors_torch = _require_safetensors()
    if not isinstance(detector, BaseDetector):
        raise TypeError(
            f"skood.io.save stores skood detectors; got {type(detector).__name__}. Use "
            "skops or pickle (trusted files only) for other objects."
        )
    writer = _Writer(safetensors_torch)
    root = writer.detector(detector, type(detector).__name__)
    manifest = {
        "format": _FORMAT,
        "format_version": FORMAT_VERSION,
        "versions": recorded_versions(),
        "entries": {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in writer.entries.items()
        },
        "estimator": root,
    }
    members = {_MANIFEST: json.dumps(manifest, indent=1).encode(), **writer.entries}
    if hasattr(path, "write"):
        _write_archive(path, members)
        return
    path = Path(path)
    # Written beside the target and moved over it: an interrupted save leaves the old file.
    # (Opened with "xb", not mkstemp, so the file gets the umask's permissions, not 0600.)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex}.tmp")
    try:
        with open(temporary, "xb") as file:
            _write_archive(file, members)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load(path: str | os.PathLike | IO[bytes], *, device: str | None = None) -> BaseDetector:
    """Load a detector saved by :func:`save`, verifying it and never unpickling anything.

    Every entry of the archive must be listed in the manifest with its size and SHA-256
    digest; the classes it names must be on skood's allow-list; the networks are rebuilt from
    the detector's parameters and the stored tensors must match them exactly (names, shapes,
    dtypes). A file that fails any check is refused before a detector is returned.

    Parameters
    ----------
    path : str, path-like or binary file object
        The file to read.
    device : str or None, default=None
        Where to put the networks: ``"cpu"``, ``"cuda"``, ``"cuda:N"``, ``"mps"`` or
        ``"auto"``, as the detectors' ``device`` parameter. None uses the device the
        networks were saved from when it exists here and the CPU otherwise (with a skorch
        ``DeviceWarning``): a detector fitted on a GPU loads on a CPU-only machine. The
        detector's ``device`` parameter keeps its saved value either way (``get_params`` is
        unchanged); set it to the new device before a ``warm_start`` fit.

    Returns
    -------
    detector : BaseDetector
        The detector, with the parameters, fitted attributes, networks, optimizer states,
        history and random streams it was saved with.

    Raises
    ------
    skood.exceptions.FileVerificationError
        When the file is not a complete and consistent skood.io archive (the message says
        which entry is at fault).
    ValueError
        When ``device`` names a device this machine does not have.
    ImportError
        When ``safetensors`` is not installed: ``pip install "skood[io]"``.

    Warns
    -----
    skood.exceptions.InconsistentSkoodVersionWarning
        When the file was written by another version of skood, PyTorch, scikit-learn or
        skorch (CPU and CUDA builds of one PyTorch release count as the same).

    See Also
    --------
    save : Write a detector.

    Examples
    --------
    >>> import os, tempfile
    >>> import numpy as np
    >>> from skood import AutoencoderDetector
    >>> import skood.io
    >>> X = np.random.RandomState(0).normal(size=(100, 3))
    >>> detector = AutoencoderDetector(
    ...     latent_dim=2, hidden_dims=(8,), max_epochs=1, random_state=0
    ... ).fit(X)
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     path = os.path.join(folder, "detector.skood")
    ...     skood.io.save(detector, path)
    ...     restored = skood.io.load(path, device="cpu")
    >>> restored.get_params() == detector.get_params()
    True
    >>> str(restored.net_.device)
    'cpu'
    """
    safetensors_torch = _require_safetensors()
    if device is not None:
        device = str(resolve_device(device))
    members = _read_archive(path)
    manifest = _parse_manifest(members.pop(_MANIFEST))
    _check_entries(manifest["entries"], members)
    root = manifest["estimator"]
    name = root.get("class") if isinstance(root, dict) else None
    versions = manifest["versions"]
    if not isinstance(versions, dict) or not all(
        isinstance(value, str) for value in versions.values()
    ):
        raise FileVerificationError("The manifest's 'versions' must map package names to strings.")
    warn_if_inconsistent(
        str(name),
        {package: versions.get(package) for package in compared_versions()},
        compared_versions(),
        operation="load",
    )
    reader = _Reader(members, safetensors_torch, device)
    try:
        detector = reader.value(root, "estimator")
    except RecursionError as error:
        raise FileVerificationError("The manifest nests values implausibly deep.") from error
    if not isinstance(detector, BaseDetector):
        raise FileVerificationError("The manifest's 'estimator' is not a skood detector.")
    unused = set(members) - reader.used
    if unused:
        raise FileVerificationError(
            f"The archive holds entries nothing refers to: {sorted(unused)}."
        )
    return detector


# ---------------------------------------------------------------------- archive
def _write_archive(file: IO[bytes], members: Mapping[str, bytes]) -> None:
    with zipfile.ZipFile(file, "w") as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            # Weights barely compress; JSON and index arrays do.
            stored = name.endswith(".safetensors")
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            archive.writestr(info, data)


def _read_archive(path: str | os.PathLike | IO[bytes]) -> dict[str, bytes]:
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise FileVerificationError(
            f"{path!r} is not a skood.io file (not a zip archive). skood.io never reads pickle "
            "or joblib files; load those with pickle only if you trust their source."
        ) from error
    with archive:
        infos = archive.infolist()
        names = [info.filename for info in infos]
        if len(set(names)) != len(names):
            raise FileVerificationError("The archive holds several entries of the same name.")
        if _MANIFEST not in names:
            raise FileVerificationError(f"The archive has no {_MANIFEST}: not a skood.io file.")
        members = {}
        for info in infos:
            if info.file_size > _MAX_ENTRY_BYTES:
                raise FileVerificationError(f"Entry {info.filename!r} is implausibly large.")
            try:
                members[info.filename] = archive.read(info)
            except (zipfile.BadZipFile, OSError, ValueError) as error:  # CRC or size mismatch
                raise FileVerificationError(
                    f"Entry {info.filename!r} is corrupted: {error}"
                ) from error
    return members


def _unique_pairs(pairs: list[tuple[str, Any]]) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise FileVerificationError("The manifest repeats a key within one JSON object.")
    return result


def _parse_manifest(data: bytes) -> dict:
    try:
        manifest = json.loads(data.decode("utf-8"), object_pairs_hook=_unique_pairs)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise FileVerificationError(f"{_MANIFEST} is not valid JSON: {error!r}") from error
    if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
        raise FileVerificationError(f"{_MANIFEST} does not describe a {_FORMAT} file.")
    if manifest.get("format_version") != FORMAT_VERSION:
        raise FileVerificationError(
            f"The file has format version {manifest.get('format_version')!r}; this skood reads "
            f"version {FORMAT_VERSION}. Load it with the skood version that wrote it "
            f"({manifest.get('versions', {}).get('skood', 'unknown')})."
        )
    _check_keys(manifest, _MANIFEST_KEYS, "the manifest")
    return manifest


def _check_entries(entries, members: Mapping[str, bytes]) -> None:
    if not isinstance(entries, dict):
        raise FileVerificationError("The manifest's 'entries' must be a JSON object.")
    missing = sorted(set(entries) - set(members))
    if missing:
        raise FileVerificationError(f"The archive lacks the entries {missing} its manifest lists.")
    unlisted = sorted(set(members) - set(entries))
    if unlisted:
        raise FileVerificationError(f"The archive holds entries its manifest omits: {unlisted}.")
    for name, record in entries.items():
        _check_keys(record, {"sha256", "size"}, f"entry {name!r}")
        data = members[name]
        if len(data) != record["size"] or hashlib.sha256(data).hexdigest() != record["sha256"]:
            raise FileVerificationError(
                f"Entry {name!r} does not match the size and SHA-256 digest its manifest "
                "records: the file is corrupted or was altered."
            )


def _check_keys(spec, keys: set[str], where: str) -> None:
    if not isinstance(spec, dict):
        raise FileVerificationError(f"{where} must be a JSON object.")
    missing, unknown = keys - set(spec), set(spec) - keys
    if missing or unknown:
        details = []
        if missing:
            details.append(f"missing {sorted(missing)}")
        if unknown:
            details.append(f"unexpected {sorted(unknown)}")
        raise FileVerificationError(f"{where}: {', '.join(details)}.")


def _resolve_load_device(saved: str, requested: str | None) -> str:
    """The device a net saved from ``saved`` goes to: ``requested``, else ``saved`` when it
    exists here, else the CPU (with skorch's ``DeviceWarning``, as unpickling does)."""
    if requested is not None:
        return requested
    try:
        return str(resolve_device(saved))
    except ValueError:
        warnings.warn(
            f"The networks were saved on device {saved!r}, which this machine does not have; "
            "loading them on the CPU instead (pass device= to choose).",
            DeviceWarning,
            stacklevel=2,
        )
        return "cpu"


# ---------------------------------------------------------------------- writing
class _Writer:
    """Turns a detector into typed JSON, collecting arrays and tensors as archive entries."""

    def __init__(self, safetensors_torch: ModuleType) -> None:
        self.entries: dict[str, bytes] = {}
        self._safetensors = safetensors_torch
        self._detector_ids: dict[int, int] = {}
        self._tensors: dict[str, torch.Tensor] | None = None
        self._tensor_prefix, self._tensor_count = "", 0

    def detector(self, detector: BaseDetector, where: str) -> dict:
        if id(detector) in self._detector_ids:  # the same object twice (a shared generator)
            return {_TAG: "detector_ref", "id": self._detector_ids[id(detector)]}
        name = type(detector).__name__
        if _DETECTORS.get(name) is not type(detector):
            raise TypeError(
                f"{where} is a {type(detector).__module__}.{type(detector).__qualname__}, which "
                f"skood.io cannot store: it reconstructs only skood's own detector classes "
                f"({', '.join(sorted(_DETECTORS))}), never classes named by a file."
            )
        identifier = self._detector_ids[id(detector)] = len(self._detector_ids)
        params = detector.get_params(deep=False)
        state = {key: value for key, value in vars(detector).items() if key not in params}
        return {
            _TAG: "detector",
            "class": name,
            "id": identifier,
            "params": {key: self.value(value, f"{where}.{key}") for key, value in params.items()},
            "state": {key: self.value(value, f"{where}.{key}") for key, value in state.items()},
        }

    def value(self, value: Any, where: str) -> Any:
        if value is None or type(value) in (bool, int, float, str):
            return value
        if isinstance(value, np.generic):
            return self._scalar(value, where)
        if isinstance(value, np.ndarray):
            return self._array(value, where)
        if isinstance(value, History):
            return {_TAG: "history", "items": self.value(list(value), where)}
        if type(value) is list:
            return [self.value(item, f"{where}[{i}]") for i, item in enumerate(value)]
        if type(value) is tuple:
            return {_TAG: "tuple", "items": self.value(list(value), where)}
        if type(value) in (set, frozenset):
            items = sorted(value, key=repr)
            return {_TAG: "set", "items": self.value(items, where)}
        if type(value) is dict:
            if all(isinstance(key, str) for key in value) and _TAG not in value:
                return {key: self.value(item, f"{where}.{key}") for key, item in value.items()}
            return {
                _TAG: "dict",
                "items": [
                    [self.value(key, where), self.value(item, f"{where}[{key!r}]")]
                    for key, item in value.items()
                ],
            }
        if isinstance(value, torch.device):
            return {_TAG: "torch.device", "value": str(value)}
        if isinstance(value, torch.Tensor) and self._tensors is not None:
            key = f"{self._tensor_prefix}{self._tensor_count}"
            self._tensor_count += 1
            self._tensors[key] = value.detach().cpu().contiguous()
            return {_TAG: "tensor", "key": key}
        if isinstance(value, np.random.RandomState):
            kind, keys, position, has_gauss, cached = value.get_state(legacy=True)
            return {
                _TAG: "RandomState",
                "state": self.value((kind, keys, position, has_gauss, cached), where),
            }
        if isinstance(value, BaseDetector):
            return self.detector(value, where)
        if isinstance(value, NeuralNet):
            return self._net(value, where)
        if isinstance(value, functools.partial):
            return self._partial(value, where)
        if type(value) in _CALLBACKS.values():
            params = {key: item for key, item in vars(value).items() if not key.endswith("_")}
            return {
                _TAG: "callback",
                "name": _name_of(_CALLBACKS, type(value)),
                "params": self.value(params, where),
            }
        name = _name_of(_OBJECTS, value)
        if name is not None:
            return {_TAG: "object", "name": name}
        if isinstance(value, torch.nn.Module):
            raise TypeError(
                f"{where} holds a {type(value).__name__} module. skood.io rebuilds only skood's "
                "own networks; a user's module is arbitrary code that a data file cannot "
                "describe. Save its state_dict yourself, or pickle the detector (trusted "
                "files only)."
            )
        raise TypeError(
            f"{where} holds a {type(value).__module__}.{type(value).__qualname__}, which skood.io "
            "cannot store as plain data."
        )

    def _scalar(self, value: np.generic, where: str) -> dict:
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{where} holds a NumPy scalar of dtype {value.dtype}.")
        return {_TAG: "scalar", "dtype": value.dtype.str, "value": value.item()}

    def _array(self, array: np.ndarray, where: str) -> dict:
        if array.dtype.kind == "O":
            items = array.ravel().tolist()
            if not all(type(item) is str for item in items):
                raise TypeError(
                    f"{where} is an object array holding other values than strings, which "
                    "skood.io cannot store without pickle."
                )
            return {_TAG: "string_array", "shape": list(array.shape), "items": items}
        if array.dtype.kind not in "biufUS" or array.dtype.fields is not None:
            raise TypeError(f"{where} is an array of dtype {array.dtype}.")
        name = f"arrays/{sum(key.startswith('arrays/') for key in self.entries)}.npy"
        buffer = _bytes_io.BytesIO()
        np.save(buffer, array, allow_pickle=False)
        self.entries[name] = buffer.getvalue()
        return {
            _TAG: "ndarray",
            "entry": name,
            "dtype": array.dtype.str,
            "shape": list(array.shape),
        }

    def _partial(self, value: functools.partial, where: str) -> dict:
        name = _name_of(_OBJECTS, value.func)
        if name is None:
            raise TypeError(f"{where} is a partial of {value.func!r}, which skood.io cannot name.")
        return {
            _TAG: "partial",
            "function": name,
            "args": self.value(list(value.args), where),
            "keywords": self.value(dict(value.keywords), where),
        }

    def _net(self, net: NeuralNet, where: str) -> dict:
        name = _name_of(_NETS, type(net))
        if name is None:
            raise TypeError(f"{where} is a {type(net).__name__}, which skood.io cannot rebuild.")
        if not getattr(net, "initialized_", False):
            raise TypeError(f"{where} is a skorch net that is not initialized.")
        if self._tensors is not None:
            raise TypeError(f"{where}: a skorch net inside a skorch net cannot be stored.")
        tensors: dict[str, torch.Tensor] = {}
        modules, criteria, optimizers = list(net.network_names()), list(net.criterion_names()), []
        for module_name in modules:
            for key, tensor in getattr(net, module_name + "_").state_dict().items():
                tensors[f"modules/{module_name}/{key}"] = tensor.detach().cpu().contiguous()
        for criterion_name in criteria:
            for key, tensor in getattr(net, criterion_name + "_").state_dict().items():
                tensors[f"criteria/{criterion_name}/{key}"] = tensor.detach().cpu().contiguous()
        skipped = {"module", "partners", "_modules", "_criteria", "_optimizers"}
        params = {
            key: value
            for key, value in vars(net).items()
            if not key.endswith("_") and key not in skipped
        }
        self._tensors = tensors
        try:
            encoded_params = self.value(params, f"{where}.params")
            optimizer_states = {}
            for optimizer_name in net.optimizer_names():
                optimizers.append(optimizer_name)
                self._tensor_prefix, self._tensor_count = f"optimizers/{optimizer_name}/", 0
                state = getattr(net, optimizer_name + "_").state_dict()
                optimizer_states[optimizer_name] = self.value(state, f"{where}.{optimizer_name}")
        finally:
            self._tensors = None
        entry = f"tensors/{sum(key.startswith('tensors/') for key in self.entries)}.safetensors"
        self.entries[entry] = self._safetensors.save(tensors, metadata={"format": _FORMAT})
        return {
            _TAG: "net",
            "class": _name_of(_NETS, type(net)),
            "params": encoded_params,
            "partners": list(net.partners),  # in order: it fixes the order of the networks
            "modules": modules,
            "criteria": criteria,
            "optimizers": optimizers,
            "tensors": entry,
            "optimizer_states": optimizer_states,
            "history": self.value(net.history_, f"{where}.history_"),
            "callbacks": {
                callback_name: {
                    key: self.value(value, f"{where}.{callback_name}.{key}")
                    for key, value in vars(callback).items()
                    if key.endswith("_") and _is_plain(value)
                }
                for callback_name, callback in net.callbacks_
            },
            "training": {
                module_name: [
                    module.training for _, module in getattr(net, module_name + "_").named_modules()
                ]
                for module_name in modules
            },
            "frozen": {
                module_name: [
                    key
                    for key, parameter in getattr(net, module_name + "_").named_parameters()
                    if not parameter.requires_grad
                ]
                for module_name in modules
            },
        }


# ---------------------------------------------------------------------- reading
class _Reader:
    """Builds a detector from verified typed JSON; refuses anything outside the format."""

    def __init__(
        self, members: Mapping[str, bytes], safetensors_torch: ModuleType, device: str | None
    ) -> None:
        self._members = members
        self._safetensors = safetensors_torch
        self._device = device
        self._detectors: dict[int, BaseDetector] = {}
        self._tensors: dict[str, torch.Tensor] | None = None
        self._tensors_used: set[str] = set()
        self.used: set[str] = set()

    def _entry(self, name, where: str) -> bytes:
        if not isinstance(name, str) or name not in self._members:
            raise FileVerificationError(f"{where} refers to the missing entry {name!r}.")
        if name in self.used:
            raise FileVerificationError(f"{where} refers to entry {name!r} a second time.")
        self.used.add(name)
        return self._members[name]

    def value(self, spec: Any, where: str) -> Any:
        if spec is None or type(spec) in (bool, int, float, str):
            return spec
        if type(spec) is list:
            return [self.value(item, f"{where}[{i}]") for i, item in enumerate(spec)]
        if type(spec) is not dict:
            raise FileVerificationError(f"{where}: unexpected JSON value {spec!r}.")
        if _TAG not in spec:
            return {key: self.value(item, f"{where}.{key}") for key, item in spec.items()}
        kind = spec[_TAG]
        decoder = self._DECODERS.get(kind) if isinstance(kind, str) else None
        if decoder is None:
            raise FileVerificationError(f"{where}: unknown value type {kind!r}.")
        return decoder(self, spec, where)

    # Each decoder checks the fields of its tag first.
    def _items(self, spec, where: str) -> list:
        _check_keys(spec, {_TAG, "items"}, where)
        items = self.value(spec["items"], where)
        if type(items) is not list:
            raise FileVerificationError(f"{where}: 'items' must be a list.")
        return items

    def _tuple(self, spec, where: str) -> tuple:
        return tuple(self._items(spec, where))

    def _set(self, spec, where: str) -> set:
        try:
            return set(self._items(spec, where))
        except TypeError as error:
            raise FileVerificationError(f"{where}: a set of unhashable items.") from error

    def _dict(self, spec, where: str) -> dict:
        pairs = self._items(spec, where)
        if not all(type(pair) is list and len(pair) == 2 for pair in pairs):
            raise FileVerificationError(f"{where}: 'items' must be [key, value] pairs.")
        try:
            result = {key: item for key, item in pairs}
        except TypeError as error:
            raise FileVerificationError(f"{where}: an unhashable key.") from error
        if len(result) != len(pairs):
            raise FileVerificationError(f"{where}: repeated keys.")
        return result

    def _history(self, spec, where: str) -> History:
        items = self._items(spec, where)
        if not all(type(item) is dict for item in items):
            raise FileVerificationError(f"{where}: a history holds one JSON object per epoch.")
        return History(items)

    def _scalar(self, spec, where: str) -> np.generic:
        _check_keys(spec, {_TAG, "dtype", "value"}, where)
        dtype = self._dtype(spec["dtype"], "biuf", where)
        if type(spec["value"]) not in (bool, int, float):
            raise FileVerificationError(f"{where}: a scalar must hold a number.")
        return dtype.type(spec["value"])

    @staticmethod
    def _dtype(text, kinds: str, where: str) -> np.dtype:
        try:
            dtype = np.dtype(text) if isinstance(text, str) else None
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in kinds or dtype.fields is not None:
            raise FileVerificationError(f"{where}: unsupported dtype {text!r}.")
        return dtype

    @staticmethod
    def _shape(shape, where: str) -> tuple[int, ...]:
        if type(shape) is not list or not all(type(n) is int and n >= 0 for n in shape):
            raise FileVerificationError(f"{where}: a shape must be a list of sizes.")
        return tuple(shape)

    def _array(self, spec, where: str) -> np.ndarray:
        _check_keys(spec, {_TAG, "entry", "dtype", "shape"}, where)
        dtype = self._dtype(spec["dtype"], "biufUS", where)
        shape = self._shape(spec["shape"], where)
        data = self._entry(spec["entry"], where)
        try:
            array = np.load(_bytes_io.BytesIO(data), allow_pickle=False)
        except (ValueError, OSError, EOFError) as error:
            raise FileVerificationError(
                f"{where}: entry {spec['entry']!r} is not a plain .npy array ({error})."
            ) from error
        if not isinstance(array, np.ndarray) or array.dtype != dtype or array.shape != shape:
            raise FileVerificationError(
                f"{where}: entry {spec['entry']!r} holds an array of dtype "
                f"{getattr(array, 'dtype', None)} and shape {getattr(array, 'shape', None)}; the "
                f"manifest records {dtype} and {shape}."
            )
        return array

    def _string_array(self, spec, where: str) -> np.ndarray:
        _check_keys(spec, {_TAG, "shape", "items"}, where)
        shape = self._shape(spec["shape"], where)
        items = spec["items"]
        if type(items) is not list or not all(type(item) is str for item in items):
            raise FileVerificationError(f"{where}: a string array holds strings only.")
        if int(np.prod(shape)) != len(items):
            raise FileVerificationError(f"{where}: {len(items)} strings for shape {shape}.")
        array = np.empty(len(items), dtype=object)
        array[:] = items
        return array.reshape(shape)

    def _torch_device(self, spec, where: str) -> torch.device:
        _check_keys(spec, {_TAG, "value"}, where)
        try:
            return torch.device(spec["value"])
        except (RuntimeError, TypeError) as error:
            raise FileVerificationError(f"{where}: not a device: {spec['value']!r}.") from error

    def _tensor(self, spec, where: str) -> torch.Tensor:
        _check_keys(spec, {_TAG, "key"}, where)
        if self._tensors is None or spec["key"] not in self._tensors:
            raise FileVerificationError(f"{where}: missing tensor {spec['key']!r}.")
        if spec["key"] in self._tensors_used:
            raise FileVerificationError(f"{where}: tensor {spec['key']!r} used twice.")
        self._tensors_used.add(spec["key"])
        return self._tensors[spec["key"]]

    def _random_state(self, spec, where: str) -> np.random.RandomState:
        _check_keys(spec, {_TAG, "state"}, where)
        random_state = np.random.RandomState()
        try:
            random_state.set_state(self.value(spec["state"], where))
        except (TypeError, ValueError) as error:
            raise FileVerificationError(f"{where}: not a RandomState state ({error}).") from error
        return random_state

    def _object(self, spec: dict, where: str) -> object:
        _check_keys(spec, {_TAG, "name"}, where)
        if not isinstance(spec["name"], str) or spec["name"] not in _OBJECTS:
            raise FileVerificationError(
                f"{where} names {spec['name']!r}, which is not on skood.io's allow-list "
                f"({', '.join(sorted(_OBJECTS))})."
            )
        return _OBJECTS[spec["name"]]

    def _partial(self, spec, where: str) -> functools.partial:
        _check_keys(spec, {_TAG, "function", "args", "keywords"}, where)
        function = self._object({_TAG: "object", "name": spec["function"]}, where)
        if not callable(function) or isinstance(function, type):
            raise FileVerificationError(f"{where}: {spec['function']!r} is not a function.")
        args, keywords = self.value(spec["args"], where), self.value(spec["keywords"], where)
        if type(args) is not list or type(keywords) is not dict:
            raise FileVerificationError(f"{where}: malformed partial.")
        return functools.partial(function, *args, **keywords)

    def _callback(self, spec: dict, where: str) -> object:
        _check_keys(spec, {_TAG, "name", "params"}, where)
        if not isinstance(spec["name"], str) or spec["name"] not in _CALLBACKS:
            raise FileVerificationError(
                f"{where} names the callback {spec['name']!r}, which is not on skood.io's "
                f"allow-list ({', '.join(sorted(_CALLBACKS))})."
            )
        params = self.value(spec["params"], where)
        if type(params) is not dict:
            raise FileVerificationError(f"{where}: malformed callback parameters.")
        # skorch would look a policy given by name up itself: only allow-listed classes.
        cls = _CALLBACKS[spec["name"]]
        if issubclass(cls, EveryOptimizerLRScheduler) and not isinstance(
            params.get("policy"), type
        ):
            raise FileVerificationError(f"{where}: the policy must be an allow-listed class.")
        try:
            return cls(**params)
        except TypeError as error:
            raise FileVerificationError(f"{where}: {error}") from error

    def _detector_ref(self, spec, where: str) -> BaseDetector:
        _check_keys(spec, {_TAG, "id"}, where)
        if spec["id"] not in self._detectors:
            raise FileVerificationError(f"{where} refers to an unknown detector {spec['id']!r}.")
        return self._detectors[spec["id"]]

    def _detector(self, spec, where: str) -> BaseDetector:
        _check_keys(spec, {_TAG, "class", "id", "params", "state"}, where)
        name = spec["class"]
        if not isinstance(name, str) or name not in _DETECTORS:
            raise FileVerificationError(
                f"{where} names the class {name!r}, which is not on skood.io's allow-list of "
                f"detectors ({', '.join(sorted(_DETECTORS))}); nothing is imported from a file."
            )
        if type(spec["id"]) is not int or spec["id"] in self._detectors:
            raise FileVerificationError(f"{where}: a missing or repeated detector id.")
        cls = _DETECTORS[name]
        detector = self._detector_params(cls, spec["params"], f"{where} ({name})")
        self._detectors[spec["id"]] = detector
        state = spec["state"]
        if type(state) is not dict:
            raise FileVerificationError(f"{where}: 'state' must be a JSON object.")
        for key in state:
            self._check_attribute_name(cls, key, detector, where)
        nets = {key: item for key, item in state.items() if _is_tagged(item, "net")}
        for key, item in state.items():
            if key not in nets:
                vars(detector)[key] = self.value(item, f"{where}.{key}")
        # Checked before the networks are rebuilt from these attributes.
        _check_fitted_state(detector, set(nets), where)
        for key, item in nets.items():
            vars(detector)[key] = self._net(item, detector, f"{where}.{key}")
        return detector

    def _detector_params(self, cls: type, params, where: str) -> BaseDetector:
        if type(params) is not dict:
            raise FileVerificationError(f"{where}: 'params' must be a JSON object.")
        expected = set(cls._get_param_names())
        if set(params) != expected:
            missing, unknown = sorted(expected - set(params)), sorted(set(params) - expected)
            raise FileVerificationError(
                f"{where}: the parameters do not match the class (missing {missing}, unknown "
                f"{unknown})."
            )
        values = {key: self.value(item, f"{where}.{key}") for key, item in params.items()}
        detector = cls(**values)
        try:
            detector._validate_params()
        except InvalidParameterError as error:
            raise FileVerificationError(f"{where}: {error}") from error
        return detector

    @staticmethod
    def _check_attribute_name(cls: type, key, detector, where: str) -> None:
        if (
            not isinstance(key, str)
            or not key.isidentifier()
            or key.startswith("__")
            or key in vars(detector)
            or hasattr(cls, key)
        ):
            raise FileVerificationError(
                f"{where}: {key!r} cannot be a fitted attribute (it is not a plain name, or it "
                "is a parameter, method or class attribute)."
            )

    def _net(self, spec: dict, detector: BaseDetector, where: str) -> NeuralNet:
        keys = {
            _TAG, "class", "params", "partners", "modules", "criteria", "optimizers", "tensors",
            "optimizer_states", "history", "callbacks", "training", "frozen",
        }  # fmt: skip
        _check_keys(spec, keys, where)
        cls = _NETS.get(spec["class"]) if isinstance(spec["class"], str) else None
        if cls is None or cls is not _NETS_OF[type(detector)]:
            raise FileVerificationError(
                f"{where} names the net class {spec['class']!r}, which is not on skood.io's "
                f"allow-list for {type(detector).__name__}."
            )
        try:
            tensors = self._safetensors.load(self._entry(spec["tensors"], where))
        except FileVerificationError:
            raise
        except Exception as error:  # safetensors raises its own error types on bad headers
            raise FileVerificationError(
                f"{where}: unreadable safetensors entry ({error})."
            ) from error
        self._tensors, self._tensors_used = tensors, set()
        try:
            params = self.value(spec["params"], f"{where}.params")
            if type(params) is not dict:
                raise FileVerificationError(f"{where}: 'params' must be a JSON object.")
            if not isinstance(params.get("device"), str):
                raise FileVerificationError(f"{where}: the net's device must be a string.")
            try:
                networks = detector._build_networks(detector.n_features_in_, 0)
            except (AttributeError, TypeError, ValueError, RuntimeError, IndexError) as error:
                raise FileVerificationError(
                    f"{where}: the networks cannot be rebuilt from the parameters and fitted "
                    f"attributes ({type(error).__name__}: {error})."
                ) from error
            net = self._initialized_net(cls, params, networks, spec, where)
            self._load_tensors(net, spec, tensors, where)
            self._load_optimizers(net, spec, where)
            unused = set(tensors) - self._tensors_used
            if unused:
                raise FileVerificationError(f"{where}: unexpected tensors {sorted(unused)[:5]}.")
        finally:
            self._tensors = None
        history = self.value(spec["history"], f"{where}.history_")
        if not isinstance(history, History):
            raise FileVerificationError(f"{where}: the history must be a skorch History.")
        net.history_ = history
        self._set_callback_states(net, spec["callbacks"], where)
        self._set_modes(net, spec, where)
        return net

    def _set_callback_states(self, net: NeuralNet, states, where: str) -> None:
        """The plain fitted attributes of the rebuilt callbacks (best scores so far, whether
        the log printed its header): a continued fit records what it would have."""
        callbacks = dict(net.callbacks_)
        if type(states) is not dict or set(states) != set(callbacks):
            raise FileVerificationError(f"{where}: the callbacks do not match the net's.")
        for name, attributes in states.items():
            if type(attributes) is not dict:
                raise FileVerificationError(f"{where}.{name}: malformed callback state.")
            callback = callbacks[name]
            for key, item in attributes.items():
                value = self.value(item, f"{where}.{name}.{key}")
                plain_name = key.isidentifier() and key.endswith("_") and not key.startswith("__")
                if not plain_name or hasattr(type(callback), key) or not _is_plain(value):
                    raise FileVerificationError(f"{where}.{name}: {key!r} cannot be restored.")
                setattr(callback, key, value)

    def _initialized_net(
        self, cls: type, params: dict, networks: dict, spec: dict, where: str
    ) -> NeuralNet:
        partners = spec["partners"]
        if type(partners) is not list or set(networks) != {"module", *partners}:
            raise FileVerificationError(
                f"{where}: the file names the partner networks {partners!r}; the detector's "
                f"parameters give {sorted(set(networks) - {'module'})}."
            )
        for key in params:
            if not isinstance(key, str) or not key.isidentifier() or key.startswith("__"):
                raise FileVerificationError(f"{where}: {key!r} is not a net parameter name.")
            if hasattr(cls, key) or key.endswith("_"):
                raise FileVerificationError(f"{where}: {key!r} cannot be a net parameter.")
        # torch.compile would pick a backend by name: a file does not get to switch it on.
        if params.get("compile") is not False or any(key.startswith("compile__") for key in params):
            raise FileVerificationError(f"{where}: a net saved with torch.compile settings.")
        device = _resolve_load_device(params["device"], self._device)
        # Built as unpickling builds it, without __init__ (whose signature differs per net
        # class): skorch's own attributes first, then the stored parameters and the networks.
        net = cls.__new__(cls)
        vars(net).update({"history_": None, "initialized_": False, "virtual_params_": {}})
        vars(net).update(params)
        vars(net).update(
            device=device,
            module=networks["module"],
            partners={name: networks[name] for name in partners},
        )
        try:
            net.initialize()
        except (TypeError, ValueError, AttributeError, RuntimeError) as error:
            raise FileVerificationError(f"{where}: the net cannot be rebuilt ({error}).") from error
        # initialize() drops the random streams of the last fit (a new fit reseeds): restore.
        for key, value in params.items():
            vars(net).setdefault(key, value)
        for field, found in (
            ("modules", net.network_names()),
            ("criteria", net.criterion_names()),
            ("optimizers", net.optimizer_names()),
        ):
            if spec[field] != list(found):
                raise FileVerificationError(
                    f"{where}: the file lists the {field} {spec[field]!r}; the rebuilt net has "
                    f"{list(found)!r}."
                )
        return net

    def _load_tensors(self, net, spec, tensors: Mapping[str, torch.Tensor], where: str) -> None:
        for group, names in (
            ("modules", net.network_names()),
            ("criteria", net.criterion_names()),
        ):
            for name in names:
                target = getattr(net, name + "_")
                expected = target.state_dict()
                prefix = f"{group}/{name}/"
                stored = {
                    key[len(prefix) :]: tensor
                    for key, tensor in tensors.items()
                    if key.startswith(prefix)
                }
                _check_state(expected, stored, f"{where}.{name}_")
                with torch.no_grad():
                    target.load_state_dict(stored, strict=True)
                self._tensors_used.update(prefix + key for key in stored)

    def _load_optimizers(self, net, spec, where: str) -> None:
        states = spec["optimizer_states"]
        if type(states) is not dict or set(states) != set(net.optimizer_names()):
            raise FileVerificationError(f"{where}: the optimizer states do not match the net.")
        for name in net.optimizer_names():
            optimizer = getattr(net, name + "_")
            state = self.value(states[name], f"{where}.{name}_")
            _check_optimizer_state(optimizer, state, f"{where}.{name}_")
            try:
                optimizer.load_state_dict(state)
            except (ValueError, KeyError, TypeError, RuntimeError) as error:
                raise FileVerificationError(f"{where}.{name}_: {error}") from error

    @staticmethod
    def _set_modes(net, spec, where: str) -> None:
        training, frozen = spec["training"], spec["frozen"]
        if type(training) is not dict or type(frozen) is not dict:
            raise FileVerificationError(f"{where}: malformed module modes.")
        names = set(net.network_names())
        if set(training) != names or set(frozen) != names:
            raise FileVerificationError(f"{where}: the module modes do not match the net.")
        for name, module in net.networks().items():
            submodules = [submodule for _, submodule in module.named_modules()]
            flags = training[name]
            if type(flags) is not list or len(flags) != len(submodules):
                raise FileVerificationError(f"{where}.{name}_: malformed training flags.")
            for submodule, flag in zip(submodules, flags, strict=True):
                if type(flag) is not bool:
                    raise FileVerificationError(f"{where}.{name}_: malformed training flags.")
                submodule.training = flag
            parameters = dict(module.named_parameters())
            names = frozen[name]
            if type(names) is not list or not all(type(key) is str for key in names):
                raise FileVerificationError(f"{where}.{name}_: malformed frozen parameters.")
            if not set(names) <= set(parameters):
                raise FileVerificationError(f"{where}.{name}_: unknown frozen parameters.")
            for key, parameter in parameters.items():
                parameter.requires_grad_(key not in names)

    _DECODERS: dict[str, Callable] = {
        "tuple": _tuple,
        "set": _set,
        "dict": _dict,
        "history": _history,
        "scalar": _scalar,
        "ndarray": _array,
        "string_array": _string_array,
        "torch.device": _torch_device,
        "tensor": _tensor,
        "RandomState": _random_state,
        "object": _object,
        "partial": _partial,
        "callback": _callback,
        "detector": _detector,
        "detector_ref": _detector_ref,
    }


def _is_plain(value) -> bool:
    """A number, string, bool or None: what a callback's fitted state may be restored as."""
    if isinstance(value, np.generic):
        return value.dtype.kind in "biuf"
    return value is None or type(value) in (bool, int, float, str)


def _is_tagged(spec, kind: str) -> bool:
    return type(spec) is dict and spec.get(_TAG) == kind


def _check_state(expected: Mapping[str, torch.Tensor], stored, where: str) -> None:
    """Stored tensors must be the rebuilt network's, name for name, in shape and dtype."""
    missing, unknown = sorted(set(expected) - set(stored)), sorted(set(stored) - set(expected))
    if missing or unknown:
        raise FileVerificationError(
            f"{where}: the stored tensors do not match the network rebuilt from the parameters "
            f"(missing {missing[:5]}, unexpected {unknown[:5]})."
        )
    for key, reference in expected.items():
        tensor = stored[key]
        if tensor.shape != reference.shape or tensor.dtype != reference.dtype:
            raise FileVerificationError(
                f"{where}: tensor {key!r} has shape {tuple(tensor.shape)} and dtype "
                f"{tensor.dtype}; the network rebuilt from the parameters needs "
                f"{tuple(reference.shape)} and {reference.dtype}."
            )


def _check_optimizer_state(optimizer: torch.optim.Optimizer, state, where: str) -> None:
    """The moments of every parameter must have its shape (scalars such as ``step`` aside)."""
    if type(state) is not dict or set(state) != {"state", "param_groups"}:
        raise FileVerificationError(f"{where}: malformed optimizer state.")
    groups, per_parameter = state["param_groups"], state["state"]
    fresh = optimizer.state_dict()["param_groups"]
    if type(groups) is not list or len(groups) != len(fresh):
        raise FileVerificationError(f"{where}: {len(fresh)} parameter groups expected.")
    for group, reference in zip(groups, fresh, strict=True):
        if type(group) is not dict or group.get("params") != reference["params"]:
            raise FileVerificationError(f"{where}: the parameter groups do not match the net.")
    # state_dict numbers the parameters through all groups in order.
    parameters = [parameter for group in optimizer.param_groups for parameter in group["params"]]
    parameters = dict(enumerate(parameters))
    if type(per_parameter) is not dict or not set(per_parameter) <= set(parameters):
        raise FileVerificationError(f"{where}: state for unknown parameters.")
    for index, entries in per_parameter.items():
        if type(entries) is not dict:
            raise FileVerificationError(f"{where}: malformed state of parameter {index}.")
        for key, value in entries.items():
            moment = isinstance(value, torch.Tensor) and value.dim() > 0
            if moment and (value.shape != parameters[index].shape or not value.is_floating_point()):
                raise FileVerificationError(
                    f"{where}: {key!r} of parameter {index} has shape {tuple(value.shape)}; "
                    f"the parameter has {tuple(parameters[index].shape)}."
                )


def _check_fitted_state(detector: BaseDetector, nets: set[str], where: str) -> None:
    """A fitted detector has BaseDetector's fitted attributes, of consistent shapes; ``nets``
    are the names of the stored skorch nets, not rebuilt yet."""
    attributes = vars(detector)
    fitted = [key for key in [*attributes, *nets] if key.endswith("_")]
    if not fitted:
        return
    missing = [key for key in _CORE_FITTED if key not in attributes and key not in nets]
    if missing:
        raise FileVerificationError(f"{where}: a fitted detector without {missing}.")
    n_features = attributes["n_features_in_"]
    if type(n_features) is not int or n_features < 1:
        raise FileVerificationError(f"{where}: n_features_in_ must be a positive integer.")
    for key in ("input_mean_", "input_scale_"):
        value = attributes[key]
        if not isinstance(value, np.ndarray) or value.shape != (n_features,):
            raise FileVerificationError(
                f"{where}: {key} has shape {getattr(value, 'shape', None)}, not "
                f"({n_features},) as n_features_in_ says."
            )
    names = attributes.get("feature_names_in_")
    if names is not None and (not isinstance(names, np.ndarray) or names.shape != (n_features,)):
        raise FileVerificationError(f"{where}: feature_names_in_ does not match n_features_in_.")
    if type(attributes["offset_"]) is not float:
        raise FileVerificationError(f"{where}: offset_ must be a float.")
    if "net_" not in nets:
        raise FileVerificationError(f"{where}: net_ must be a skorch net.")
