"""BaggingDetector: the contract checks, the combination rules, seeds and draws, parallel fits."""

import pickle
import random

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.base import BaseEstimator, OutlierMixin
from sklearn.datasets import make_blobs
from sklearn.ensemble import IsolationForest
from sklearn.metrics import roc_auc_score
from sklearn.utils.estimator_checks import parametrize_with_checks

from skood import BaggingDetector, DLSGANDetector, PostHocDetector
from skood.utils.estimator_checks import parametrize_with_detector_checks

pytestmark = pytest.mark.usefixtures("one_thread")

FAST_GAN = {"max_epochs": 2, "hidden_dims": (16,), "latent_dim": 4, "device": "cpu"}
ENSEMBLES = [
    BaggingDetector(IsolationForest(n_estimators=10), n_estimators=3, random_state=0),
    BaggingDetector(DLSGANDetector(**FAST_GAN), n_estimators=2, random_state=0),
]


@parametrize_with_checks(ENSEMBLES)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@parametrize_with_detector_checks(ENSEMBLES)
def test_detector_contract(detector, check):
    check(detector)


class LinearScores(OutlierMixin, BaseEstimator):
    """A fake detector: score = scale * X[:, 0] + shift, whatever it was fitted on."""

    def __init__(self, scale=1.0, shift=0.0, random_state=None):
        self.scale = scale
        self.shift = shift
        self.random_state = random_state

    def fit(self, X, y=None):
        self.n_features_in_ = X.shape[1]
        self.fitted_rows_ = X.shape[0]
        return self

    def score_samples(self, X):
        return self.scale * np.asarray(X)[:, 0] + self.shift


class TwoMembers(LinearScores):
    """Member 0 gets scale 1, member 1 scale 10 and shift 5 (told apart by their seeds)."""

    seeds = {}

    def fit(self, X, y=None):
        first = self.random_state == min(type(self).seeds)
        self.scale, self.shift = (1.0, 0.0) if first else (10.0, 5.0)
        return super().fit(X, y)


def _two_member_ensemble(combination):
    X = np.array([[1.0], [2.0], [3.0], [4.0]])
    ensemble = BaggingDetector(
        TwoMembers(), n_estimators=2, combination=combination, random_state=0
    )
    TwoMembers.seeds = dict.fromkeys(np.random.RandomState(0).randint(2**31 - 1, size=2))
    ensemble.fit(X)
    return ensemble, X


def test_rank_combination_by_hand():
    ensemble, X = _two_member_ensemble("rank")
    test = np.array([[0.5], [2.0], [2.5], [9.0]])
    # Member 0's training scores 1, 2, 3, 4 sit at ranks 0, 1/3, 2/3, 1, interpolated between,
    # with linear tails in units of their range (3) beyond; member 1's are 15, 25, 35, 45
    # (range 30) and it scores the test rows 10, 25, 30, 95.
    first = np.array([(0.5 - 1) / 3, 1 / 3, 1 / 2, 1 + (9 - 4) / 3])
    second = np.array([(10 - 15) / 30, 1 / 3, 1 / 2, 1 + (95 - 45) / 30])
    np.testing.assert_allclose(ensemble.score_samples(test), (first + second) / 2)
    np.testing.assert_allclose(ensemble.member_scores(test), [first, second])
    # A noisy rescoring of a training row keeps (nearly) its rank: no step of 1/n.
    np.testing.assert_allclose(ensemble.score_samples([[2.0 - 1e-9]]), [1 / 3], atol=1e-8)
    train = np.arange(4) / 3
    assert ensemble.offset_ == pytest.approx(np.percentile(train, 10))
    np.testing.assert_allclose(
        ensemble.decision_function(test), ensemble.score_samples(test) - ensemble.offset_
    )


@settings(max_examples=50, deadline=None)
@given(
    train=arrays(np.float64, st.integers(2, 30), elements=st.integers(-1000, 1000).map(float)),
    scores=arrays(np.float64, st.integers(1, 30), elements=st.integers(-9999, 9999).map(float)),
)
def test_rank_scale_is_monotone_and_continuous_beyond_the_training_scores(train, scores):
    # Rows scored beyond every training row keep their order (clipped ranks would tie them),
    # and the tails meet the ranks 0 and 1 at the lowest and highest training score.
    ensemble = BaggingDetector(LinearScores(), n_estimators=1).fit(train[:, None])
    scores = np.sort(scores)
    values = ensemble.score_samples(scores[:, None])
    assert np.all(np.diff(values) >= 0)
    low, high = train.min(), train.max()
    if high > low:
        outside = (scores[1:] < low) | (scores[:-1] > high)
        assert np.all(np.diff(values)[outside & (np.diff(scores) > 0)] > 0)
        step = 1e-9 * (high - low)
        edges = ensemble.score_samples([[low - step], [high + step]])
        np.testing.assert_allclose(edges, [0.0, 1.0], atol=1e-8)


def test_zscore_and_mean_combinations_by_hand():
    test = np.array([[0.0], [2.5], [6.0]])
    t = np.arange(1.0, 5.0)
    ensemble, _ = _two_member_ensemble("zscore")
    z = (test[:, 0] - t.mean()) / t.std()  # both members are affine: the same z-scores
    np.testing.assert_allclose(ensemble.score_samples(test), z)
    ensemble, _ = _two_member_ensemble("mean")
    np.testing.assert_allclose(ensemble.score_samples(test), (test[:, 0] + 10 * test[:, 0] + 5) / 2)


def test_zscore_of_constant_member_uses_unit_scale():
    X = np.ones((5, 2))
    ensemble = BaggingDetector(LinearScores(), n_estimators=1, combination="zscore").fit(X)
    assert ensemble.score_scales_[0] == 1.0
    np.testing.assert_allclose(ensemble.score_samples([[3.0, 0.0]]), [2.0])
    # Rank with tied training scores: 0 below them, 1 above.
    ensemble.set_params(combination="rank").fit(X)
    np.testing.assert_allclose(ensemble.score_samples([[0.0, 0.0], [2.0, 0.0]]), [0.0, 1.0])


def test_seeds_and_draws_distinct_reproducible_and_global_state_untouched():
    X = np.random.RandomState(1).normal(size=(50, 6))
    params = {"n_estimators": 4, "max_samples": 0.5, "max_features": 3, "random_state": 7}
    np_state = np.random.get_state()  # noqa: NPY002 (the global state is the point)
    torch_state, py_state = torch.get_rng_state(), random.getstate()
    first = BaggingDetector(LinearScores(), bootstrap=True, **params).fit(X)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert random.getstate() == py_state
    seeds = [member.random_state for member in first.estimators_]
    assert len(set(seeds)) == 4 and seeds == list(first.seeds_)
    assert all(len(rows) == 25 for rows in first.estimators_samples_)
    assert all(member.fitted_rows_ == 25 for member in first.estimators_)
    assert len({tuple(rows) for rows in first.estimators_samples_}) == 4
    assert len({tuple(cols) for cols in first.estimators_features_}) > 1
    assert all(len(cols) == 3 and np.all(np.diff(cols) > 0) for cols in first.estimators_features_)
    again = BaggingDetector(LinearScores(), bootstrap=True, **params).fit(X)
    assert list(again.seeds_) == list(first.seeds_)
    for a, b in zip(first.estimators_samples_, again.estimators_samples_, strict=True):
        assert np.array_equal(a, b)
    without = BaggingDetector(LinearScores(), **params).fit(X)
    assert all(len(set(rows)) == 25 for rows in without.estimators_samples_)


def test_draw_sizes_larger_than_data_are_clear_errors():
    X = np.zeros((10, 3))
    with pytest.raises(ValueError, match="max_samples=11 is larger than the number of samples"):
        BaggingDetector(LinearScores(), max_samples=11).fit(X)
    with pytest.raises(ValueError, match="max_features=4 is larger than the number of features"):
        BaggingDetector(LinearScores(), max_features=4).fit(X)
    with pytest.raises(ValueError, match="score_samples"):
        BaggingDetector(object()).fit(X)


def _blobs_with_outliers():
    X, _ = make_blobs(n_samples=300, centers=3, n_features=4, random_state=0)
    far = np.random.RandomState(1).uniform(-25, 25, size=(30, 4))
    far = far[np.min(np.linalg.norm(far[:, None] - X[None], axis=2), axis=1) > 6]
    y = np.r_[np.ones(len(X)), -np.ones(len(far))]
    return X, far, y


def test_ensemble_of_dlsgans_at_least_as_good_as_median_member():
    X, far, y = _blobs_with_outliers()
    gan = DLSGANDetector(max_epochs=5, hidden_dims=(32,), latent_dim=2, device="cpu")
    ensemble = BaggingDetector(gan, n_estimators=5, random_state=0).fit(X)
    test = np.r_[X, far]
    members = [
        roc_auc_score(y, member.score_samples(test[:, cols]))
        for member, cols in zip(ensemble.estimators_, ensemble.estimators_features_, strict=True)
    ]
    assert roc_auc_score(y, ensemble.score_samples(test)) >= np.median(members)


def test_parallel_fit_gives_the_scores_of_a_sequential_one():
    X, far, _ = _blobs_with_outliers()
    test = np.r_[X, far]
    params = {"n_estimators": 3, "max_samples": 0.7, "max_features": 0.75, "random_state": 0}
    forest = IsolationForest(n_estimators=10)
    one = BaggingDetector(forest, n_jobs=1, **params).fit(X)
    two = BaggingDetector(forest, n_jobs=2, **params).fit(X)
    np.testing.assert_array_equal(two.score_samples(test), one.score_samples(test))
    assert two.offset_ == one.offset_
    # Networks trained in worker processes (torch pickled there and back) too.
    gan = DLSGANDetector(**FAST_GAN)
    one = BaggingDetector(gan, n_estimators=2, n_jobs=1, random_state=0).fit(X)
    two = BaggingDetector(gan, n_estimators=2, n_jobs=2, random_state=0).fit(X)
    np.testing.assert_array_equal(two.score_samples(test), one.score_samples(test))


def test_supervised_member_requires_y():
    X, labels = make_blobs(n_samples=80, centers=2, n_features=3, random_state=0)
    member = PostHocDetector(max_epochs=2, hidden_dims=(8,), device="cpu")
    ensemble = BaggingDetector(member, n_estimators=2, max_samples=0.8, random_state=0)
    assert ensemble.__sklearn_tags__().target_tags.required
    with pytest.raises(ValueError, match="requires y"):
        ensemble.fit(X)
    labels_pred = ensemble.fit_predict(X, labels)
    assert set(np.unique(labels_pred)) <= {-1, 1}
    assert all(np.array_equal(member.classes_, [0, 1]) for member in ensemble.estimators_)


def test_pickle_round_trip():
    X, far, _ = _blobs_with_outliers()
    ensemble = BaggingDetector(DLSGANDetector(**FAST_GAN), n_estimators=2, random_state=0).fit(X)
    restored = pickle.loads(pickle.dumps(ensemble))
    np.testing.assert_array_equal(restored.score_samples(far), ensemble.score_samples(far))
    np.testing.assert_array_equal(restored.predict(X), ensemble.predict(X))
