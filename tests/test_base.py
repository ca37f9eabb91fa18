"""The scikit-learn outlier contract of skood's BaseDetector, exercised through DLSGANDetector.

Scores, offsets and labels; feature names; input and parameter validation; seeds; meta-estimators
(clone, set_params, GridSearchCV over a Pipeline); persistence (pickle, joblib, CUDA -> CPU);
separation of a shifted cluster; divergence; the latent-space API; the training history;
batched scoring; learning-rate decay.
"""

import copy
import os
import pickle
import subprocess
import sys
import warnings

import joblib
import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from skorch.exceptions import DeviceWarning

from skood import DLSGANDetector, TrainingDivergedError

TINY = {"max_epochs": 2, "latent_dim": 4, "hidden_dims": (16,), "device": "cpu", "random_state": 0}
VARIANTS = ["dlsgan", "msegan", "infogan"]
SCORE_TYPES = ["nlp", "reconstruction"]
N_ROWS, N_FEATURES = 200, 5
# No CUDA at all here, or one index past the last GPU: either way a device that does not exist.
MISSING_GPU = f"cuda:{torch.cuda.device_count()}"


def tiny(**params) -> DLSGANDetector:
    return DLSGANDetector(**{**TINY, **params})


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(N_ROWS, N_FEATURES))


@pytest.fixture(scope="module")
def fitted(X):
    """One fitted detector shared by the read-only tests; tests must not change it."""
    return tiny().fit(X)


# --------------------------------------------------------------------------- the contract
@pytest.mark.parametrize("score_type", SCORE_TYPES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_scores_decision_and_labels_agree(X, variant, score_type):
    det = tiny(variant=variant, score_type=score_type)
    assert det.fit(X) is det
    scores = det.score_samples(X)
    assert scores.dtype == np.float64
    assert scores.shape == (N_ROWS,)
    assert np.all(np.isfinite(scores))
    assert isinstance(det.offset_, float)
    assert det.offset_ == np.percentile(scores, 100 * det.contamination)
    decision = det.decision_function(X)
    np.testing.assert_array_equal(decision, scores - det.offset_)
    labels = det.predict(X)
    assert labels.shape == (N_ROWS,)
    assert set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))


@pytest.mark.parametrize("variant", VARIANTS)
def test_fit_predict_equals_fit_then_predict(X, variant):
    labels = tiny(variant=variant).fit_predict(X)
    np.testing.assert_array_equal(labels, tiny(variant=variant).fit(X).predict(X))
    assert np.mean(labels == -1) == pytest.approx(TINY.get("contamination", 0.1), abs=0.01)


def test_a_score_equal_to_the_offset_is_an_inlier():
    # With 201 rows and contamination 0.25 the percentile falls exactly on the 51st lowest
    # training score: that row has decision 0 and is +1; the 50 below it are -1.
    X = np.random.RandomState(3).normal(size=(201, 4))
    det = tiny(contamination=0.25).fit(X)
    scores = det.score_samples(X)
    assert det.offset_ == np.sort(scores)[50]
    decision = det.decision_function(X)
    assert np.count_nonzero(decision == 0) == 1
    labels = det.predict(X)
    assert labels[decision == 0] == 1
    assert np.count_nonzero(labels == -1) == 50


@pytest.mark.parametrize("score_type", SCORE_TYPES)
@pytest.mark.parametrize("contamination", [0.05, 0.2])
def test_contamination_sets_the_flagged_fraction(X, contamination, score_type):
    det = tiny(contamination=contamination, score_type=score_type).fit(X)
    assert np.mean(det.predict(X) == -1) == pytest.approx(contamination, abs=0.01)


def test_float32_input_scores_in_float64(X, fitted):
    X32 = X.astype(np.float32)
    scores = fitted.score_samples(X32)
    assert scores.dtype == np.float64
    np.testing.assert_array_equal(scores, fitted.score_samples(X32.astype(np.float64)))
    assert tiny().fit(X32).score_samples(X32).dtype == np.float64


# --------------------------------------------------------------------------- feature names
def test_n_features_in_without_names(fitted):
    assert fitted.n_features_in_ == N_FEATURES
    assert not hasattr(fitted, "feature_names_in_")


def test_feature_names_from_a_dataframe(X):
    pd = pytest.importorskip("pandas")
    columns = [f"f{i}" for i in range(N_FEATURES)]
    frame = pd.DataFrame(X, columns=columns)
    det = tiny().fit(frame)
    assert det.n_features_in_ == N_FEATURES
    assert det.feature_names_in_.tolist() == columns
    expected = det.score_samples(frame)
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        bare = det.score_samples(X)
    # A DataFrame converts to a Fortran-ordered array: same values, last-bit rounding may differ.
    np.testing.assert_allclose(bare, expected, rtol=1e-12)
    with pytest.raises(ValueError, match="feature names"):
        det.predict(frame[columns[::-1]])


def test_fitting_without_names_warns_when_scoring_a_dataframe(fitted, X):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(X, columns=[f"f{i}" for i in range(N_FEATURES)])
    with pytest.warns(UserWarning, match="fitted without feature names"):
        fitted.predict(frame)


# --------------------------------------------------------------------------- bad input
def _with_value(X, value):
    bad = X.copy()
    bad[3, 2] = value
    return bad


BAD_INPUTS = {
    "nan": (lambda X: _with_value(X, np.nan), "NaN"),
    "inf": (lambda X: _with_value(X, np.inf), "infinity"),
    "-inf": (lambda X: _with_value(X, -np.inf), "infinity"),
    "1d": (lambda X: X[:, 0], "Expected 2D array, got 1D array"),
    "empty": (lambda X: X[:0], "0 sample"),
    "strings": (lambda X: np.array([["apple"] * N_FEATURES] * 4, dtype=object), "string"),
    "complex": (lambda X: X + 1j, "Complex data not supported"),
}


@pytest.mark.parametrize(
    ("make_bad", "match"),
    [*BAD_INPUTS.values(), (lambda X: X[:1], "1 sample")],
    ids=[*BAD_INPUTS, "one-sample"],
)
def test_bad_input_is_a_clear_value_error_at_fit(X, make_bad, match):
    det = tiny()
    with pytest.raises(ValueError, match=match):
        det.fit(make_bad(X))
    with pytest.raises(NotFittedError):
        det.score_samples(X)


@pytest.mark.parametrize("method", ["score_samples", "decision_function", "predict", "transform"])
@pytest.mark.parametrize(
    ("make_bad", "match"), list(BAD_INPUTS.values()), ids=list(BAD_INPUTS)
)  # fmt: skip
def test_bad_input_is_a_clear_value_error_at_score_time(fitted, X, method, make_bad, match):
    with pytest.raises(ValueError, match=match):
        getattr(fitted, method)(make_bad(X))


def test_one_sample_scores_at_predict_time(fitted, X):
    np.testing.assert_allclose(fitted.score_samples(X[7:8]), fitted.score_samples(X)[7:8])


def test_sparse_input_is_a_type_error(fitted, X):
    with pytest.raises(TypeError, match="dense data is required"):
        tiny().fit(sp.csr_matrix(X))
    with pytest.raises(TypeError, match="dense data is required"):
        fitted.score_samples(sp.csr_matrix(X))


@pytest.mark.parametrize("method", ["score_samples", "decision_function", "predict", "transform"])
@pytest.mark.parametrize("width", [N_FEATURES - 1, N_FEATURES + 2])
def test_wrong_width_at_predict_names_both_counts(fitted, method, width):
    bad = np.zeros((3, width))
    match = f"X has {width} features, but DLSGANDetector is expecting {N_FEATURES} features"
    with pytest.raises(ValueError, match=match):
        getattr(fitted, method)(bad)


def test_constant_column_is_kept_at_scale_one(X):
    constant = X.copy()
    constant[:, 2] = 7.0
    det = tiny().fit(constant)
    assert det.input_mean_[2] == 7.0
    assert det.input_scale_[2] == 1.0
    np.testing.assert_allclose(det.input_scale_[[0, 1, 3, 4]], X[:, [0, 1, 3, 4]].std(axis=0))
    scores = det.score_samples(constant)
    assert np.all(np.isfinite(scores))
    assert np.ptp(scores) > 0
    moved = constant.copy()
    moved[:, 2] = 1e5  # far off the constant value: still finite
    assert np.all(np.isfinite(det.score_samples(moved)))


def test_all_columns_constant_still_fit_and_score_finite():
    det = tiny().fit(np.full((50, 3), -2.5))
    np.testing.assert_array_equal(det.input_scale_, 1.0)
    assert np.all(np.isfinite(det.score_samples(np.random.RandomState(0).normal(size=(10, 3)))))


# --------------------------------------------------------------------------- bad parameters
@pytest.mark.parametrize(
    "params",
    [
        {"contamination": 0.7},
        {"contamination": 0.0},
        {"latent_dim": 0},
        {"variant": "x"},
        {"score_type": "likelihood"},
        {"max_epochs": 0},
        {"lr": 0.0},
        {"lr_decay": 1.5},
        {"inference_batch_size": 0},
    ],
    ids=str,
)
def test_invalid_parameters_raise_invalid_parameter_error_at_fit(X, params):
    det = tiny(**params)  # construction only stores the values
    assert det.get_params()[next(iter(params))] == next(iter(params.values()))
    with pytest.raises(InvalidParameterError, match=next(iter(params))):
        det.fit(X)
    with pytest.raises(NotFittedError):
        det.score_samples(X)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"hidden_dims": (0,)}, "hidden_dims"),
        ({"hidden_dims": ()}, "hidden_dims"),
        ({"betas": (0.5,)}, "betas"),
    ],
    ids=str,
)
def test_other_bad_parameters_raise_value_error_at_fit(X, params, match):
    det = tiny(**params)
    with pytest.raises(ValueError, match=match):
        det.fit(X)
    with pytest.raises(NotFittedError):
        det.score_samples(X)


@pytest.mark.parametrize("device", ["gpu7", "CPU", "cuda:x", ""])
def test_unknown_device_is_a_value_error(X, device):
    with pytest.raises(ValueError, match="is not understood"):
        tiny(device=device).fit(X)


@pytest.mark.parametrize("device", ["gpu7", MISSING_GPU])
def test_fit_that_fails_on_the_device_leaves_the_detector_unfitted(X, device):
    det = tiny(device=device)
    with pytest.raises(ValueError, match="device"):
        det.fit(X)
    with pytest.raises(NotFittedError):
        det.score_samples(X)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available on this machine")
@pytest.mark.parametrize("device", ["cuda", "cuda:0"])
def test_cuda_without_cuda_is_a_value_error(X, device):
    with pytest.raises(ValueError, match="CUDA is not available"):
        tiny(device=device).fit(X)


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is available on this machine")
def test_mps_without_mps_is_a_value_error(X):
    # "mps" is an accepted device value; like CUDA, asking for it where it does not exist
    # should be a clear ValueError at fit, not a RuntimeError from deep inside PyTorch.
    with pytest.raises(ValueError, match="(?i)mps"):
        tiny(device="mps").fit(X)


def test_failed_refit_does_not_leave_a_half_updated_model(X, fitted):
    """A refit on narrower data that fails midway (it diverges in training, after the new
    width, standardization and networks were set) leaves the detector unfitted, not mixing
    the new data's shape with the old networks or a half-trained new one."""
    det = copy.deepcopy(fitted)
    with pytest.raises(TrainingDivergedError):
        det.set_params(lr=1e8).fit(X[:, :3])
    assert not any(key.endswith("_") and not key.startswith("__") for key in vars(det))
    for method in ("score_samples", "predict", "transform"):
        with pytest.raises(NotFittedError):
            getattr(det, method)(X[:, :3])
    # It fits again from scratch afterwards.
    det.set_params(lr=1e-3).fit(X[:, :3])
    assert det.n_features_in_ == det.input_mean_.shape[0] == 3


def test_refit_refused_before_any_change_keeps_the_earlier_fit(X, fitted):
    """A refit refused up front (a device that does not exist, checked before the data)
    leaves the earlier fit whole: its width, standardization, networks and scores."""
    det = copy.deepcopy(fitted)
    expected = fitted.score_samples(X)
    with pytest.raises(ValueError, match="device"):
        det.set_params(device=MISSING_GPU).fit(X[:, :3])
    check_is_fitted(det)
    assert det.n_features_in_ == det.input_mean_.shape[0] == N_FEATURES
    det.set_params(device="cpu")
    np.testing.assert_array_equal(det.score_samples(X), expected)


# --------------------------------------------------------------------------- numerics
# scikit-learn's finiteness check sums X first, and +-1.8e308 rows overflow that sum.
@pytest.mark.filterwarnings("ignore:invalid value encountered in reduce:RuntimeWarning")
@pytest.mark.parametrize("score_type", SCORE_TYPES)
def test_huge_finite_inputs_score_finite_and_are_outliers(X, score_type):
    det = tiny(score_type=score_type).fit(X)
    big = np.finfo(np.float64).max
    extreme = np.array(
        [[1e30] * N_FEATURES, [-1e300] * N_FEATURES, [big] * N_FEATURES, [-big] * N_FEATURES,
         [1e300, -1e300, 1e300, -1e300, 1e300]]
    )  # fmt: skip
    scores = det.score_samples(extreme)
    assert np.all(np.isfinite(scores))
    np.testing.assert_array_equal(det.predict(extreme), -1)
    assert scores.max() < det.score_samples(X).min()


@pytest.mark.parametrize("factor", [1e-16, 1e-8, 1e8, 1e100])
def test_standardization_makes_scores_invariant_to_feature_units(X, fitted, factor):
    # The detector standardizes internally, so expressing every feature in other units
    # (X * factor) must give the same model and the same scores, as it does for factors of
    # moderate size; a detector that scores every row alike has lost the data.
    rescaled = tiny().fit(X * factor)
    scores = rescaled.score_samples(X * factor)
    assert np.ptp(scores) > 0
    np.testing.assert_allclose(scores, fitted.score_samples(X), rtol=1e-6)


# --------------------------------------------------------------------------- seeds
def test_same_random_state_gives_bitwise_identical_fits(X, fitted):
    again = tiny().fit(X)
    np.testing.assert_array_equal(again.score_samples(X), fitted.score_samples(X))
    np.testing.assert_array_equal(again.transform(X), fitted.transform(X))
    assert again.offset_ == fitted.offset_


def test_different_random_state_gives_different_scores(X, fitted):
    other = tiny(random_state=1).fit(X)
    assert not np.allclose(other.score_samples(X), fitted.score_samples(X))


def test_fit_leaves_the_global_random_states_alone(X):
    torch.manual_seed(123)
    expected_torch = torch.rand(3)
    torch.manual_seed(123)
    numpy_state = np.random.get_state()  # noqa: NPY002 (the legacy global state is the point)
    tiny().fit(X).score_samples(X)
    np.testing.assert_array_equal(torch.rand(3), expected_torch)
    after = np.random.get_state()  # noqa: NPY002
    np.testing.assert_array_equal(after[1], numpy_state[1])
    assert after[2] == numpy_state[2]


# --------------------------------------------------------------------------- meta-estimators
def test_clone_is_unfitted_with_the_same_params(fitted, X):
    copy = clone(fitted)
    assert copy.get_params() == fitted.get_params()
    assert not any(key.endswith("_") for key in vars(copy))
    with pytest.raises(NotFittedError):
        copy.score_samples(X)
    np.testing.assert_array_equal(copy.fit(X).score_samples(X), fitted.score_samples(X))


def test_set_params_then_fit_changes_the_latent_width(fitted, X):
    det = clone(fitted)
    assert det.set_params(latent_dim=8) is det
    det.fit(X)
    assert fitted.transform(X).shape == (N_ROWS, 4)
    assert det.transform(X).shape == (N_ROWS, 8)
    assert len(det.get_feature_names_out()) == 8


def test_grid_search_over_a_pipeline_with_the_outlier_auroc_scorer():
    from skood.metrics import outlier_auroc_scorer

    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(size=(150, 4)), rng.normal(loc=5.0, size=(30, 4))])
    y = np.r_[np.ones(150, dtype=int), -np.ones(30, dtype=int)]
    pipeline = Pipeline([("scale", StandardScaler()), ("det", tiny())])
    candidates = [4, 8]
    search = GridSearchCV(
        pipeline,
        {"det__latent_dim": candidates},
        scoring=outlier_auroc_scorer,
        cv=StratifiedKFold(3, shuffle=True, random_state=0),
    ).fit(X, y)
    assert search.best_params_["det__latent_dim"] in candidates
    assert search.best_score_ > 0.9
    assert np.all(search.cv_results_["mean_test_score"] <= 1.0)
    best = search.best_estimator_
    assert best.named_steps["det"].latent_dim == search.best_params_["det__latent_dim"]
    assert best.predict(X).shape == (len(X),)


# --------------------------------------------------------------------------- persistence
def _assert_same_model(restored, original, X):
    np.testing.assert_array_equal(restored.score_samples(X), original.score_samples(X))
    np.testing.assert_array_equal(restored.decision_function(X), original.decision_function(X))
    np.testing.assert_array_equal(restored.transform(X), original.transform(X))
    np.testing.assert_array_equal(restored.predict(X), original.predict(X))
    assert restored.offset_ == original.offset_


def test_pickle_round_trip(fitted, X, tmp_path):
    path = tmp_path / "detector.pkl"
    path.write_bytes(pickle.dumps(fitted))
    _assert_same_model(pickle.loads(path.read_bytes()), fitted, X)


def test_joblib_round_trip(fitted, X, tmp_path):
    path = tmp_path / "detector.joblib"
    joblib.dump(fitted, path)
    _assert_same_model(joblib.load(path), fitted, X)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU to fit on CUDA")
def test_model_fitted_on_real_cuda_loads_in_a_cpu_only_process(X, tmp_path):
    det = tiny(device="cuda").fit(X)
    assert str(det.net_.device).startswith("cuda")
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "scores.npy", det.score_samples(X))
    (tmp_path / "det.pkl").write_bytes(pickle.dumps(det))
    code = f"""
import pickle, warnings
import numpy as np, torch
assert not torch.cuda.is_available()
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    det = pickle.loads(open({str(tmp_path / "det.pkl")!r}, "rb").read())
assert any("CUDA" in str(w.message) for w in caught), [str(w.message) for w in caught]
assert str(det.net_.device) == "cpu", det.net_.device
X = np.load({str(tmp_path / "X.npy")!r})
np.testing.assert_allclose(
    det.score_samples(X), np.load({str(tmp_path / "scores.npy")!r}), rtol=1e-5
)
"""
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU exists: the real CUDA test runs")
def test_model_marked_cuda_loads_on_cpu_simulated_without_gpu(X):
    det = tiny().fit(X)
    expected = det.score_samples(X)
    det.net_.device = "cuda"  # what a net fitted on a GPU carries into its pickle
    payload = pickle.dumps(det)
    with pytest.warns(DeviceWarning, match="CUDA"):
        restored = pickle.loads(payload)
    assert str(restored.net_.device) == "cpu"
    for name in ("module_", "discriminator_"):
        module = getattr(restored.net_, name)
        assert all(p.device.type == "cpu" for p in module.parameters())
    np.testing.assert_array_equal(restored.score_samples(X), expected)


def _torch_objects(value, seen=None):
    """Torch modules, tensors and optimizers reachable through containers in ``value``."""
    seen = set() if seen is None else seen
    if id(value) in seen:
        return []
    seen.add(id(value))
    if isinstance(value, torch.nn.Module | torch.Tensor | torch.optim.Optimizer):
        return [value]
    if isinstance(value, dict):
        return [found for item in value.values() for found in _torch_objects(item, seen)]
    if isinstance(value, list | tuple | set):
        return [found for item in value for found in _torch_objects(item, seen)]
    return []


def test_pickled_net_sends_every_network_through_the_device_aware_path(X):
    # A model fitted on CUDA loads on a CPU-only machine only if none of its tensors is pickled
    # plainly: skorch maps the attributes it knows to the CPU, nothing else.
    det = tiny().fit(X)
    state = det.net_.__getstate__()
    assert _torch_objects(state) == []
    restored = pickle.loads(pickle.dumps(det))
    assert restored.net_.module is restored.net_.module_
    assert restored.net_.partners["discriminator"] is restored.net_.discriminator_
    np.testing.assert_array_equal(restored.score_samples(X), det.score_samples(X))


# --------------------------------------------------------------------------- separation
@pytest.fixture(scope="module")
def shifted_cluster():
    rng = np.random.RandomState(1)
    train = rng.normal(size=(300, 6))
    test = np.vstack([rng.normal(size=(200, 6)), rng.normal(loc=6.0, size=(50, 6))])
    is_inlier = np.r_[np.ones(200), np.zeros(50)]
    return train, test, is_inlier


@pytest.mark.parametrize("score_type", SCORE_TYPES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_separates_a_shifted_outlier_cluster(shifted_cluster, variant, score_type):
    train, test, is_inlier = shifted_cluster
    det = DLSGANDetector(
        max_epochs=10, latent_dim=8, hidden_dims=(32, 32), variant=variant,
        score_type=score_type, device="cpu", random_state=0,
    ).fit(train)  # fmt: skip
    assert roc_auc_score(is_inlier, det.score_samples(test)) > 0.95


# --------------------------------------------------------------------------- divergence
@pytest.mark.parametrize(
    ("variant", "lr"),
    [("infogan", 1e4), ("dlsgan", 1e8), ("msegan", 1e8)],
    ids=["infogan-lr1e4", "dlsgan-lr1e8", "msegan-lr1e8"],
)
@pytest.mark.parametrize("refit", [False, True], ids=["fresh", "refit"])
def test_divergence_raises_and_leaves_the_detector_unfitted(X, variant, lr, refit):
    det = tiny(variant=variant)
    if refit:
        det.fit(X)
    det.set_params(lr=lr)
    with pytest.raises(TrainingDivergedError, match=r"lr=") as info:
        det.fit(X)
    assert isinstance(info.value, FloatingPointError)
    assert "epoch" in str(info.value) and "batch" in str(info.value)
    assert not any(key.endswith("_") for key in vars(det))
    for method in ("score_samples", "predict", "transform"):
        with pytest.raises(NotFittedError):
            getattr(det, method)(X)


@pytest.mark.parametrize("variant", ["dlsgan", "msegan"])
def test_exploding_latent_variance_warns_and_scores_stay_finite(X, variant):
    det = tiny(variant=variant, lr=100.0, max_epochs=3)
    with pytest.warns(ConvergenceWarning, match="lr"):
        det.fit(X)
    assert det.latent_variance_.max() > 1e4
    assert np.all(np.isfinite(det.history_[:, "train_loss"]))
    scores = det.score_samples(X)
    assert np.all(np.isfinite(scores))
    assert np.all(np.isfinite(det.decision_function(X)))


def test_a_normal_fit_emits_no_warning(X):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tiny().fit(X).predict(X)


# --------------------------------------------------------------------------- latent space
def test_transform_and_feature_names_out(fitted, X):
    latents = fitted.transform(X)
    assert latents.shape == (N_ROWS, TINY["latent_dim"])
    assert latents.dtype == np.float64
    names = fitted.get_feature_names_out()
    assert len(names) == TINY["latent_dim"]
    assert len(set(names)) == len(names)


def test_inverse_transform_and_sample_are_in_original_units():
    rng = np.random.RandomState(0)
    X = 100.0 + 10.0 * rng.normal(size=(300, 3))
    det = tiny(max_epochs=5).fit(X)
    decoded = det.inverse_transform(det.transform(X))
    assert decoded.shape == X.shape
    sampled = det.sample(300, random_state=0)
    for generated in (decoded, sampled):
        assert np.all(np.isfinite(generated))
        # Within a few standard deviations (10) of the mean, not near the standardized 0.
        assert np.all(np.abs(generated.mean(axis=0) - 100.0) < 30.0)


def test_sample_is_reproducible(fitted):
    first = fitted.sample(5, random_state=0)
    assert first.shape == (5, N_FEATURES)
    np.testing.assert_array_equal(fitted.sample(5, random_state=0), first)
    assert not np.allclose(fitted.sample(5, random_state=1), first)
    with pytest.raises(ValueError, match="n_samples"):
        fitted.sample(0)


@pytest.mark.parametrize("width", [TINY["latent_dim"] - 1, TINY["latent_dim"] + 1])
def test_inverse_transform_rejects_the_wrong_latent_width(fitted, width):
    with pytest.raises(ValueError, match=f"{width} latent coordinates"):
        fitted.inverse_transform(np.zeros((2, width)))


def test_unfitted_detector_raises_not_fitted(X):
    det = tiny()
    for call in (
        lambda: det.score_samples(X),
        lambda: det.decision_function(X),
        lambda: det.predict(X),
        lambda: det.transform(X),
        lambda: det.inverse_transform(np.zeros((2, 4))),
        lambda: det.sample(2),
        lambda: det.history_,
    ):
        with pytest.raises(NotFittedError):
            call()


# --------------------------------------------------------------------------- history, verbose
def test_history_has_every_loss_for_every_epoch(X):
    det = tiny(max_epochs=3, batch_size=64).fit(X)
    assert len(det.history_) == 3
    for epoch in det.history_:
        for key in ("train_loss", "generator_loss", "encoder_loss", "r1_penalty", "dur"):
            assert np.isfinite(epoch[key]), (key, epoch[key])
        # 200 rows in batches of 64: 4 batches, the last with 8 rows; every row is trained on.
        sizes = [batch["train_batch_size"] for batch in epoch["batches"]]
        assert sizes == [64, 64, 64, 8]
        # The epoch value of a loss is the row-weighted mean of its batch values.
        for key in ("generator_loss", "encoder_loss", "r1_penalty"):
            values = [batch[key] for batch in epoch["batches"]]
            assert epoch[key] == pytest.approx(np.average(values, weights=sizes), rel=1e-12)


def test_verbose_prints_an_epoch_table(X, capsys):
    tiny(verbose=1).fit(X)
    printed = capsys.readouterr().out
    for column in ("epoch", "train_loss", "generator_loss", "encoder_loss", "r1_penalty", "dur"):
        assert column in printed
    assert "traced_variance" not in printed
    assert len([line for line in printed.splitlines() if line.strip()[:1].isdigit()]) == 2


def test_verbose_zero_prints_nothing(X, capsys):
    tiny(verbose=0).fit(X).score_samples(X)
    captured = capsys.readouterr()
    assert captured.out == ""


# --------------------------------------------------------------------------- latent scale
@pytest.mark.parametrize("variant", VARIANTS)
def test_latent_variance_and_scale(X, variant):
    det = tiny(variant=variant).fit(X)
    d = TINY["latent_dim"]
    assert det.latent_variance_.shape == det.latent_scale_.shape == (d,)
    assert np.all(det.latent_variance_ > 0)
    if variant == "dlsgan":
        np.testing.assert_allclose(np.sum(det.latent_scale_**2), d, rtol=1e-5)
        expected = np.sqrt(d * det.latent_variance_ / det.latent_variance_.sum())
        np.testing.assert_allclose(det.latent_scale_, expected, rtol=1e-5)
        assert not np.allclose(det.latent_scale_, 1.0)
    else:
        np.testing.assert_array_equal(det.latent_scale_, np.ones(d))


# --------------------------------------------------------------------------- batched scoring
@pytest.mark.parametrize("score_type", SCORE_TYPES)
def test_inference_batch_size_does_not_change_scores(X, score_type):
    default = tiny(score_type=score_type).fit(X)
    small = tiny(score_type=score_type, inference_batch_size=7).fit(X)
    np.testing.assert_allclose(small.score_samples(X), default.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(small.transform(X), default.transform(X), rtol=1e-10)
    assert small.offset_ == pytest.approx(default.offset_, rel=1e-10)
    # Changing it on a fitted detector only changes how scoring is chunked.
    default.set_params(inference_batch_size=1)
    np.testing.assert_allclose(default.score_samples(X), small.score_samples(X), rtol=1e-10)


def test_scoring_a_subset_equals_the_slice_of_scoring_everything(fitted, X):
    everything = fitted.score_samples(X)
    for rows in (slice(50, 60), slice(0, 1), slice(190, 200), [3, 150, 7]):
        np.testing.assert_allclose(fitted.score_samples(X[rows]), everything[rows], rtol=1e-10)


# --------------------------------------------------------------------------- lr decay
def test_learning_rate_decays_after_every_epoch(X):
    det = tiny(lr=1e-3, lr_decay=0.5, max_epochs=3).fit(X)
    for optimizer in (det.net_.optimizer_, det.net_.optimizer_discriminator_):
        for group in optimizer.param_groups:
            assert group["lr"] == pytest.approx(1e-3 * 0.5**3, rel=1e-12)


def test_no_learning_rate_decay_keeps_the_learning_rate(X):
    det = tiny(lr=2e-3, lr_decay=1.0, max_epochs=3).fit(X)
    for optimizer in (det.net_.optimizer_, det.net_.optimizer_discriminator_):
        assert optimizer.param_groups[0]["lr"] == 2e-3
