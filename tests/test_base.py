"""BaseDetector through DLSGANDetector, beyond the contract checks every detector runs
(skood.utils.estimator_checks, in tests/test_common.py).

Scores and labels for the score types the common checks do not run; constant columns;
parameter and device validation; numerics; meta-estimators (set_params, GridSearchCV over a
Pipeline); the nets' device-aware pickling; separation of a shifted cluster; blow-ups with
finite losses; the latent-space API; the training history; batched scoring; learning-rate
decay.
"""

import pickle
import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from skood import DLSGANDetector

TINY = {"max_epochs": 2, "latent_dim": 4, "hidden_dims": (16,), "device": "cpu", "random_state": 0}
VARIANTS = ["dlsgan", "msegan", "infogan"]
SCORE_TYPES = ["nlp", "reconstruction"]
N_ROWS, N_FEATURES = 200, 5


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
# The common checks (tests/test_common.py, skood.utils.estimator_checks) run the contract over
# dlsgan-nlp, msegan-reconstruction and infogan-nlp; here its score and label part for the
# other pairs of variant and score type.
OTHER_SCORE_TYPES = [("dlsgan", "reconstruction"), ("msegan", "nlp"), ("infogan", "reconstruction")]


@pytest.mark.parametrize(("variant", "score_type"), OTHER_SCORE_TYPES, ids=str)
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
    assert np.mean(labels == -1) == pytest.approx(det.contamination, abs=0.01)
    refit = tiny(variant=variant, score_type=score_type)
    np.testing.assert_array_equal(refit.fit_predict(X), labels)


def test_fitted_on_float32_scores_in_float64(X):
    # Scoring float32 rows: check_decision_function_and_predict (tests/test_common.py).
    X32 = X.astype(np.float32)
    assert tiny().fit(X32).score_samples(X32).dtype == np.float64


# --------------------------------------------------------------------------- constant columns
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


# --------------------------------------------------------------------------- meta-estimators


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
def _torch_objects(value, seen=None):
    """Torch modules, tensors and optimizers reachable in ``value``: through containers and the
    attributes of other objects (callbacks, the schedulers they hold), as pickle reaches them."""
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
    if hasattr(value, "__dict__") and not isinstance(value, type):
        return _torch_objects(value.__getstate__(), seen)  # what pickle writes of it
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
    # score_samples, decision_function, predict, transform and sample: check_not_fitted.
    for call in (lambda: det.inverse_transform(np.zeros((2, 4))), lambda: det.history_):
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
        # The epoch value of a loss is the row-weighted mean of its batch values; with lazy
        # R1 (every 4th step by default) r1_penalty's is over the batches that took it.
        for key in ("generator_loss", "encoder_loss", "r1_penalty"):
            taken = [batch for batch in epoch["batches"] if key in batch]
            values = [batch[key] for batch in taken]
            weights = [batch["train_batch_size"] for batch in taken]
            assert epoch[key] == pytest.approx(np.average(values, weights=weights), rel=1e-12)
        assert sum("r1_penalty" in batch for batch in epoch["batches"]) == 1


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
