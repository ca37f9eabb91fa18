"""skood.io: persistence without pickle, and the skood version recorded in pickles."""

import copy
import hashlib
import io
import json
import pickle
import sys
import warnings
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from sklearn.base import BaseEstimator
from skorch.exceptions import DeviceWarning

import skood
import skood.io
from skood import (
    ApproximateMassFlowDetector,
    AutoencoderDetector,
    ConditionalDLSGAN,
    DLSGANDetector,
    DMRDetector,
    InvGANDetector,
    PostHocDetector,
)
from skood.exceptions import FileVerificationError, InconsistentSkoodVersionWarning

MLP = {"hidden_dims": (8,), "max_epochs": 1, "device": "cpu", "random_state": 0}
IMAGES = {"input_shape": (1, 8, 8), "max_epochs": 1, "device": "cpu", "random_state": 0}
# One tiny instance per detector and variant: (kind of data, factory).
CASES = {
    "dlsgan": ("table", lambda: DLSGANDetector(latent_dim=2, **MLP)),
    "dlsgan-infogan": ("table", lambda: DLSGANDetector(latent_dim=2, variant="infogan", **MLP)),
    "autoencoder": ("table", lambda: AutoencoderDetector(latent_dim=2, **MLP)),
    "flow": ("table", lambda: ApproximateMassFlowDetector(n_couplings=2, **MLP)),
    "invgan": (
        "table",
        lambda: InvGANDetector(latent_dim=2, n_centres=4, n_kmeans_samples=40, **MLP),
    ),
    "invgan-encoded": (
        "table",
        lambda: InvGANDetector(
            latent_dim=2, n_centres=4, n_kmeans_samples=40, kmeans_on="encoded", **MLP
        ),
    ),
    "posthoc": ("labelled", lambda: PostHocDetector(score_type="vim", **MLP)),
    "dmr": (
        "labelled",
        lambda: DMRDetector(
            generator=AutoencoderDetector(latent_dim=2, **MLP), classifier_epochs=1, **MLP
        ),
    ),
    "conditional": ("labelled", lambda: ConditionalDLSGAN(latent_dim=2, **MLP)),
    "dlsgan-images": ("images", lambda: DLSGANDetector(latent_dim=2, batch_size=16, **IMAGES)),
    "dmr-images": (
        "labelled images",
        lambda: DMRDetector(
            generator=AutoencoderDetector(latent_dim=2, batch_size=16, **IMAGES),
            hidden_dims=(8,),
            classifier_epochs=1,
            **IMAGES,
        ),
    ),
}
WARM_STARTABLE = ["dlsgan", "autoencoder", "flow", "invgan-encoded"]

# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data(images):
    rng = np.random.RandomState(0)
    X = pd.DataFrame(rng.normal(size=(60, 5)), columns=[f"f{i}" for i in range(5)])
    y = (X["f0"] > 0).to_numpy().astype(int)
    brightness = images.mean(axis=1)
    labels = (brightness > np.median(brightness)).astype(int)
    return {"table": (X, None), "labelled": (X, y), "images": (images, None)} | {
        "labelled images": (images, labels)
    }


@pytest.fixture(scope="module")
def fitted(data):
    """``fitted(case)``: the case's detector fitted once for the module, and its data."""
    cache = {}

    def get(case: str):
        if case not in cache:
            kind, make = CASES[case]
            X, y = data[kind]
            cache[case] = (make().fit(X) if y is None else make().fit(X, y), X)
        return cache[case]

    return get


def _saved(detector, tmp_path, name="detector.skood"):
    path = tmp_path / name
    skood.io.save(detector, path)
    return path


def _rewrite(path, edit, *, redigest=True):
    """Apply ``edit(manifest, members)`` to the archive at ``path``; by default the digests
    are recomputed, as someone editing the file on purpose would."""
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    manifest = json.loads(members.pop("manifest.json"))
    edit(manifest, members)
    if redigest:
        manifest["entries"] = {
            name: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
            for name, data in members.items()
        }
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", json.dumps(manifest))
        for name, data in members.items():
            archive.writestr(name, data)


def _same_params(left, right) -> None:
    assert type(left) is type(right)
    params, expected = left.get_params(deep=False), right.get_params(deep=False)
    assert params.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, BaseEstimator):
            _same_params(params[key], value)
        else:
            assert params[key] == value and type(params[key]) is type(value), key


def _assert_same_modes(restored, original) -> None:
    # Evaluation mode (InvGAN after training) and frozen classifiers (PostHoc, DMR) come back.
    assert restored.network_names() == original.network_names()
    for name in original.network_names():
        before, after = getattr(original, name + "_"), getattr(restored, name + "_")
        assert [m.training for m in after.modules()] == [m.training for m in before.modules()]
        assert [p.requires_grad for p in after.parameters()] == [
            p.requires_grad for p in before.parameters()
        ]


def _assert_same_model(restored, original, X) -> None:
    _same_params(restored, original)
    np.testing.assert_array_equal(restored.score_samples(X), original.score_samples(X))
    np.testing.assert_array_equal(restored.decision_function(X), original.decision_function(X))
    np.testing.assert_array_equal(restored.predict(X), original.predict(X))
    assert restored.offset_ == original.offset_
    assert restored.n_features_in_ == original.n_features_in_
    if hasattr(original, "feature_names_in_"):
        np.testing.assert_array_equal(restored.feature_names_in_, original.feature_names_in_)
        assert restored.feature_names_in_.dtype == object
    for key, value in vars(original).items():
        if isinstance(value, np.ndarray):
            assert getattr(restored, key).dtype == value.dtype, key
            np.testing.assert_array_equal(getattr(restored, key), value, err_msg=key)
    assert list(restored.history_) == list(original.history_)
    _assert_same_modes(restored.net_, original.net_)
    if hasattr(original, "transform"):
        np.testing.assert_array_equal(restored.transform(X), original.transform(X))
    if hasattr(original, "predict_class_proba"):
        np.testing.assert_array_equal(
            restored.predict_class_proba(X), original.predict_class_proba(X)
        )


# --------------------------------------------------------------------------- round trips
@pytest.mark.parametrize("case", list(CASES))
def test_round_trip_scores_identically(case, fitted, tmp_path):
    detector, X = fitted(case)
    restored = skood.io.load(_saved(detector, tmp_path))
    _assert_same_model(restored, detector, X)
    if isinstance(detector, DMRDetector):
        # The nested generative model comes back whole: synthesis draws what it drew.
        np.testing.assert_array_equal(
            restored.synthesize(5, random_state=0), detector.synthesize(5, random_state=0)
        )
        assert list(restored.classifier_history_) == list(detector.classifier_history_)


def test_a_shared_generator_stays_one_object(fitted, data, tmp_path):
    X, y = data["labelled"]
    generator = AutoencoderDetector(latent_dim=2, **MLP).fit(X.to_numpy())
    detector = DMRDetector(generator=generator, classifier_epochs=1, **MLP).fit(X, y)
    assert detector.generator_ is detector.generator
    restored = skood.io.load(_saved(detector, tmp_path))
    assert restored.generator_ is restored.generator
    _assert_same_model(restored, detector, X)


def test_unfitted_detector_round_trips(tmp_path):
    detector = DMRDetector(generator=DLSGANDetector(hidden_dims=[4, 4]), emphasis=(1.0, 2.0))
    restored = skood.io.load(_saved(detector, tmp_path))
    _same_params(restored, detector)
    assert type(restored.generator.hidden_dims) is list
    assert not hasattr(restored, "net_")


def test_file_objects_round_trip(fitted):
    detector, X = fitted("dlsgan")
    buffer = io.BytesIO()
    skood.io.save(detector, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(skood.io.load(buffer).score_samples(X), detector.score_samples(X))


@pytest.mark.parametrize("case", WARM_STARTABLE)
def test_warm_start_continues_after_loading(case, data, tmp_path):
    # Optimizer moments, decayed learning rates, the history and both random streams travel:
    # a loaded detector continues exactly as the one that was saved.
    kind, make = CASES[case]
    X, _ = data[kind]
    detector = make().set_params(warm_start=True).fit(X)
    path = _saved(detector, tmp_path)
    continued = copy.deepcopy(detector).fit(X)
    restored = skood.io.load(path).fit(X)
    assert len(restored.history_) == 2
    np.testing.assert_array_equal(restored.score_samples(X), continued.score_samples(X))
    # The whole history, best-so-far flags included, but for the timings.
    assert _untimed(restored.history_) == _untimed(continued.history_)


def _untimed(history) -> list:
    return [{key: value for key, value in epoch.items() if key != "dur"} for epoch in history]


def test_optimizer_states_and_random_streams_are_restored(fitted, tmp_path):
    detector, _ = fitted("dlsgan")
    restored = skood.io.load(_saved(detector, tmp_path))
    for name in ("optimizer_", "optimizer_discriminator_"):
        saved, loaded = getattr(detector.net_, name), getattr(restored.net_, name)
        assert loaded.param_groups[0]["lr"] == saved.param_groups[0]["lr"]
        assert loaded.param_groups[0]["betas"] == saved.param_groups[0]["betas"]
        for before, after in zip(
            saved.state_dict()["state"].values(), loaded.state_dict()["state"].values(), strict=True
        ):
            for key in before:
                assert torch.equal(before[key], after[key]), key
    for stream in ("_noise_state", "_batch_order_state"):
        np.testing.assert_array_equal(
            getattr(restored.net_, stream), getattr(detector.net_, stream)
        )


# --------------------------------------------------------------------------- no pickle
@pytest.mark.parametrize("case", ["dlsgan", "dmr-images"])
def test_the_archive_holds_no_pickle(case, fitted, tmp_path):
    detector, _ = fitted(case)
    with zipfile.ZipFile(_saved(detector, tmp_path)) as archive:
        names = archive.namelist()
        assert names[0] == "manifest.json"
        json.loads(archive.read("manifest.json"))
        for name in names[1:]:
            data = archive.read(name)
            assert name.endswith((".npy", ".safetensors")), name
            assert not data.startswith(b"\x80"), f"{name} starts like a pickle"
            if name.endswith(".npy"):
                np.load(io.BytesIO(data), allow_pickle=False)
            else:
                load_tensors(data)
    assert any(name.endswith(".safetensors") for name in names)


def _forbid_unpickling(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("skood.io.load unpickled something")

    for name in ("load", "loads", "Unpickler"):
        monkeypatch.setattr(pickle, name, refuse)
    monkeypatch.setattr(torch, "load", refuse)


@pytest.mark.parametrize("case", ["invgan-encoded", "dmr", "dmr-images"])
def test_loading_never_unpickles(case, fitted, tmp_path, monkeypatch):
    detector, X = fitted(case)
    path = _saved(detector, tmp_path)
    _forbid_unpickling(monkeypatch)
    restored = skood.io.load(path)
    np.testing.assert_array_equal(restored.score_samples(X), detector.score_samples(X))


def test_a_pickle_file_is_refused_unread(fitted, tmp_path, monkeypatch):
    detector, _ = fitted("dlsgan")
    path = tmp_path / "detector.joblib"
    path.write_bytes(pickle.dumps(detector))
    _forbid_unpickling(monkeypatch)
    with pytest.raises(FileVerificationError, match="not a zip archive"):
        skood.io.load(path)


def test_an_array_that_needs_pickle_is_refused(fitted, tmp_path, monkeypatch):
    detector, _ = fitted("dlsgan")
    path = _saved(detector, tmp_path)

    def edit(manifest, members):
        entry = manifest["estimator"]["state"]["input_mean_"]["entry"]
        buffer = io.BytesIO()
        np.save(buffer, np.array([print] * 5, dtype=object), allow_pickle=True)
        members[entry] = buffer.getvalue()

    _rewrite(path, edit)
    _forbid_unpickling(monkeypatch)
    with pytest.raises(FileVerificationError, match="not a plain .npy"):
        skood.io.load(path)


# --------------------------------------------------------------------------- refused files
@pytest.mark.parametrize(
    "name", ["os.system", "BaseDetector", "sklearn.ensemble.IsolationForest", "builtins.eval"]
)
def test_a_class_outside_the_allow_list_is_refused(name, fitted, tmp_path):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    _rewrite(path, lambda manifest, members: manifest["estimator"].update({"class": name}))
    with pytest.raises(FileVerificationError, match="allow-list"):
        skood.io.load(path)


def _net_of(manifest) -> dict:
    return manifest["estimator"]["state"]["net_"]


@pytest.mark.parametrize(
    "case, edit",
    [
        ("dlsgan", lambda m: _net_of(m).update({"class": "skood.flow._FlowNet"})),
        ("dlsgan", lambda m: _net_of(m).update({"class": "subprocess.Popen"})),
        ("dlsgan", lambda m: _net_of(m)["params"]["optimizer"].update({"name": "os.system"})),
        ("dlsgan", lambda m: _net_of(m)["params"]["iterator_train"].update({"name": "exec"})),
        ("dmr", lambda m: _net_of(m)["params"]["callbacks"][0]["items"][1].update({"name": "x"})),
        ("dmr-images", lambda m: _net_of(m)["params"]["augment"].update({"function": "eval"})),
    ],
    ids=["net-of-another-detector", "net", "optimizer", "iterator", "callback", "function"],
)
def test_a_net_naming_an_unlisted_class_or_function_is_refused(case, edit, fitted, tmp_path):
    path = _saved(fitted(case)[0], tmp_path)
    _rewrite(path, lambda manifest, members: edit(manifest))
    with pytest.raises(FileVerificationError, match="allow-list"):
        skood.io.load(path)


@pytest.mark.parametrize(
    "case, edit, message",
    [
        ("dlsgan", lambda net: net["params"].update(compile=True), "torch.compile"),
        ("dlsgan", lambda net: net["params"].update(compile__backend="x"), "torch.compile"),
        (
            "dmr",
            lambda net: net["params"]["callbacks"][0]["items"][1]["params"].update(policy="StepLR"),
            "policy must be an allow-listed class",
        ),
        ("dlsgan", lambda net: net["params"].update(lr_=1.0), "cannot be a net parameter"),
        ("dlsgan", lambda net: net.update(partners=["discriminator", "x"]), "partner networks"),
    ],
    ids=["compile", "compile-backend", "policy-by-name", "fitted-name", "partners"],
)
def test_a_net_that_would_look_code_up_by_name_is_refused(case, edit, message, fitted, tmp_path):
    path = _saved(fitted(case)[0], tmp_path)
    _rewrite(path, lambda manifest, members: edit(_net_of(manifest)))
    with pytest.raises(FileVerificationError, match=message):
        skood.io.load(path)


def test_a_corrupted_tensor_is_refused(fitted, tmp_path):
    path = _saved(fitted("dlsgan")[0], tmp_path)

    def edit(manifest, members):
        data = bytearray(members["tensors/0.safetensors"])
        data[-3] ^= 0xFF
        members["tensors/0.safetensors"] = bytes(data)

    _rewrite(path, edit, redigest=False)
    with pytest.raises(FileVerificationError, match="SHA-256 digest"):
        skood.io.load(path)


def _edit_tensors(change):
    def edit(manifest, members):
        tensors = load_tensors(members["tensors/0.safetensors"])
        change(tensors)
        members["tensors/0.safetensors"] = save_tensors(tensors)

    return edit


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda t: t.update({"modules/module/traced_variance": torch.ones(3)}), "shape"),
        (lambda t: t.update({"modules/module/traced_variance": torch.ones(2).double()}), "dtype"),
        (lambda t: t.pop("modules/discriminator/latent_head.weight"), "missing"),
        (lambda t: t.update({"modules/module/extra": torch.ones(2)}), "unexpected"),
        (lambda t: t.pop("optimizers/optimizer/1"), "missing tensor"),
        (lambda t: t.update({"optimizers/optimizer/1": torch.ones(7)}), "shape"),
    ],
    ids=["shape", "dtype", "missing", "unexpected", "missing-moment", "moment-shape"],
)
def test_tensors_that_do_not_fit_the_rebuilt_networks_are_refused(
    change, message, fitted, tmp_path
):
    # Digests recomputed: the networks rebuilt from the parameters catch what they cannot.
    path = _saved(fitted("dlsgan")[0], tmp_path)
    _rewrite(path, _edit_tensors(change))
    with pytest.raises(FileVerificationError, match=message):
        skood.io.load(path)


def test_parameters_that_do_not_fit_the_tensors_are_refused(fitted, tmp_path):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    _rewrite(path, lambda manifest, members: manifest["estimator"]["params"].update(latent_dim=3))
    with pytest.raises(FileVerificationError, match="shape"):
        skood.io.load(path)


@pytest.mark.parametrize("redigest", [False, True], ids=["entry-only", "entry-and-digest"])
def test_a_missing_entry_is_refused(redigest, fitted, tmp_path):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    _rewrite(path, lambda manifest, members: members.pop("arrays/0.npy"), redigest=redigest)
    with pytest.raises(FileVerificationError, match="lacks the entries|missing entry"):
        skood.io.load(path)


def test_an_unlisted_entry_is_refused(fitted, tmp_path):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    _rewrite(path, lambda m, members: members.update({"payload.pkl": b"x"}), redigest=False)
    with pytest.raises(FileVerificationError, match="omits"):
        skood.io.load(path)


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda e: e["state"].pop("offset_"), r"without \['offset_'\]"),
        (lambda e: e["params"].pop("latent_dim"), r"missing \['latent_dim'\]"),
        (lambda e: e["params"].update(payload=1), r"unknown \['payload'\]"),
        (lambda e: e["params"].update(lr=-1.0), "lr"),
        (lambda e: e["state"].update(score_samples=0), "cannot be a fitted attribute"),
        (lambda e: e["state"].update(__class__=0), "cannot be a fitted attribute"),
        (lambda e: e["state"].update(offset_="0.1"), "offset_ must be a float"),
        (lambda e: e["state"].update(extra_={"__type__": "pickle", "data": ""}), "unknown value"),
        (lambda e: e["state"].update(n_features_in_=4), r"input_mean_ has shape \(5,\)"),
        (lambda e: e["state"]["input_mean_"].update(shape=[4]), "the manifest records"),
    ],
    ids=[
        "missing-fitted",
        "missing-param",
        "unknown-param",
        "invalid-param",
        "method-name",
        "dunder",
        "type",
        "unknown-tag",
        "inconsistent",
        "array-shape",
    ],
)
def test_an_edited_manifest_is_refused(edit, message, fitted, tmp_path):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    _rewrite(path, lambda manifest, members: edit(manifest["estimator"]))
    with pytest.raises(FileVerificationError, match=message):
        skood.io.load(path)


@pytest.mark.parametrize(
    "manifest, message",
    [
        (b"\x80\x04K\x01.", "not valid JSON"),
        (b'{"format": "skood.io", "format": "other"}', "repeats a key"),
        (b'{"format": "skood.io", "format_version": 2}', "format version 2"),
        (b'{"format": "skood.io", "format_version": 1}', "missing"),
        (b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ],
    ids=["pickle-bytes", "duplicate-key", "newer-format", "incomplete", "deep"],
)
def test_a_malformed_manifest_is_refused(manifest, message, tmp_path):
    path = tmp_path / "detector.skood"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("manifest.json", manifest)
    with pytest.raises(FileVerificationError, match=message):
        skood.io.load(path)


# --------------------------------------------------------------------------- refused saves
def test_a_user_classifier_is_not_saved(data, tmp_path):
    X, y = data["labelled"]
    module = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
    detector = PostHocDetector(classifier=module, device="cpu").fit(X.to_numpy(), y)
    with pytest.raises(TypeError, match="arbitrary code"):
        skood.io.save(detector, tmp_path / "detector.skood")
    assert not (tmp_path / "detector.skood").exists()


def test_a_subclass_is_not_saved(tmp_path):
    class Custom(DLSGANDetector):
        pass

    with pytest.raises(TypeError, match="only skood's own detector classes"):
        skood.io.save(Custom(), tmp_path / "detector.skood")


def test_a_missing_safetensors_names_the_extra(fitted, tmp_path, monkeypatch):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    for call in (lambda: skood.io.save(fitted("dlsgan")[0], path), lambda: skood.io.load(path)):
        with pytest.raises(ImportError, match=r'pip install "skood\[io\]"'):
            call()


# --------------------------------------------------------------------------- devices
@pytest.mark.parametrize("case", ["dlsgan", "dmr"])
def test_a_model_saved_on_cuda_loads_on_the_cpu(case, fitted, tmp_path, monkeypatch):
    detector, X = fitted(case)
    expected = detector.score_samples(X)
    nets = [detector.net_] + ([detector.generator_.net_] if case == "dmr" else [])
    for net in nets:  # what a net fitted on a GPU records; its tensors are written from the CPU
        monkeypatch.setitem(vars(net), "device", "cuda")
    path = _saved(detector, tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with zipfile.ZipFile(path) as archive:
        assert _net_of(json.loads(archive.read("manifest.json")))["params"]["device"] == "cuda"
    with pytest.warns(DeviceWarning, match="'cuda'"):
        restored = skood.io.load(path)
    loaded = [restored.net_] + ([restored.generator_.net_] if case == "dmr" else [])
    for net in loaded:
        assert str(net.device) == "cpu"
        for network in net.networks().values():
            assert all(p.device.type == "cpu" for p in network.parameters())
    assert restored.device == detector.device  # get_params is unchanged
    np.testing.assert_array_equal(restored.score_samples(X), expected)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeviceWarning)
        skood.io.load(path, device="cpu")  # an explicit device: no warning


def test_a_requested_device_that_does_not_exist_is_refused(fitted, tmp_path, monkeypatch):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="CUDA is not available"):
        skood.io.load(path, device="cuda")


def test_the_saved_device_is_used_where_it_exists(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert skood.io._resolve_load_device("cuda:1", None) == "cuda:1"
    assert skood.io._resolve_load_device("cuda:1", "cpu") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.warns(DeviceWarning):
        assert skood.io._resolve_load_device("cuda:1", None) == "cpu"


# --------------------------------------------------------------------------- versions
def test_the_manifest_records_the_versions(fitted, tmp_path):
    import sklearn
    import skorch

    with zipfile.ZipFile(_saved(fitted("dlsgan")[0], tmp_path)) as archive:
        versions = json.loads(archive.read("manifest.json"))["versions"]
    assert versions["skood"] == skood.__version__
    assert versions["torch"] == torch.__version__
    assert versions["scikit-learn"] == sklearn.__version__
    assert versions["skorch"] == skorch.__version__


def test_a_file_from_another_skood_version_warns(fitted, tmp_path, monkeypatch):
    detector, X = fitted("dlsgan")
    current = skood.__version__
    monkeypatch.setattr(skood, "__version__", "0.0.1")
    path = _saved(detector, tmp_path)
    monkeypatch.setattr(skood, "__version__", current)
    with pytest.warns(InconsistentSkoodVersionWarning, match="skood 0.0.1") as caught:
        restored = skood.io.load(path)
    warning = caught[0].message
    assert warning.estimator_name == "DLSGANDetector"
    assert (warning.original_skood_version, warning.current_skood_version) == ("0.0.1", current)
    np.testing.assert_array_equal(restored.score_samples(X), detector.score_samples(X))


@pytest.mark.parametrize("package", ["torch", "scikit-learn", "skorch"])
def test_a_file_from_another_dependency_version_warns(package, fitted, tmp_path):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    _rewrite(path, lambda manifest, members: manifest["versions"].update({package: "0.1"}))
    with pytest.warns(InconsistentSkoodVersionWarning, match=f"{package} 0.1") as caught:
        skood.io.load(path)
    assert caught[0].message.original_versions == {package: "0.1"}


def test_matching_versions_and_torch_builds_do_not_warn(fitted, tmp_path):
    path = _saved(fitted("dlsgan")[0], tmp_path)
    release = torch.__version__.split("+")[0]
    _rewrite(path, lambda m, members: m["versions"].update(torch=f"{release}+cu121"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentSkoodVersionWarning)
        skood.io.load(path)


@pytest.mark.parametrize("case", list(CASES))
def test_pickles_record_the_skood_version(case, fitted):
    detector, _ = fitted(case)
    state = detector.__getstate__()
    assert state["_skood_version"] == skood.__version__
    assert "_skood_version" not in vars(detector)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InconsistentSkoodVersionWarning)
        restored = pickle.loads(pickle.dumps(detector))
    assert "_skood_version" not in vars(restored)
    if isinstance(detector, DMRDetector):
        assert detector.generator_.__getstate__()["_skood_version"] == skood.__version__
        assert "_skood_version" not in vars(restored.generator_)


def test_a_pickle_from_another_skood_version_warns(fitted, monkeypatch):
    detector, X = fitted("dmr")
    current = skood.__version__
    monkeypatch.setattr(skood, "__version__", "0.0.1")
    payload = pickle.dumps(detector)
    monkeypatch.setattr(skood, "__version__", current)
    with pytest.warns(InconsistentSkoodVersionWarning, match="unpickle") as caught:
        restored = pickle.loads(payload)
    # The nested generative model is a detector too, and warns for itself.
    names = {
        w.message.estimator_name
        for w in caught
        if isinstance(w.message, InconsistentSkoodVersionWarning)
    }
    assert names == {"DMRDetector", "AutoencoderDetector"}
    assert all(
        w.message.original_skood_version == "0.0.1"
        for w in caught
        if isinstance(w.message, InconsistentSkoodVersionWarning)
    )
    np.testing.assert_array_equal(restored.score_samples(X), detector.score_samples(X))


def test_a_pickle_without_a_recorded_version_warns(fitted):
    detector, _ = fitted("dlsgan")
    state = {
        key: value for key, value in detector.__getstate__().items() if key != "_skood_version"
    }
    restored = DLSGANDetector.__new__(DLSGANDetector)
    with pytest.warns(InconsistentSkoodVersionWarning, match=r"skood \(not recorded\)"):
        restored.__setstate__(state)
