"""skood.metrics: signs, label conventions, hand-computed values and scorers."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.datasets import make_blobs
from sklearn.ensemble import IsolationForest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score, roc_curve
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skood.metrics import (
    average_precision,
    balanced_roc_auc,
    f1_at_contamination,
    fpr_at_tpr,
    make_outlier_scorer,
    outlier_auroc_scorer,
    outlier_average_precision_scorer,
    outlier_f1,
    outlier_f1_scorer,
    roc_auc,
    tnr_at_tpr,
)

Y = np.array([1, 1, 1, 1, -1, -1])
GOOD = np.array([6.0, 5.0, 4.0, 3.0, 2.0, 1.0])  # outliers score lowest


def test_sign_with_sklearn_labels():
    assert roc_auc(Y, GOOD) == 1.0
    assert roc_auc(Y, -GOOD) == 0.0


def test_sign_with_01_labels_needs_the_explicit_flag():
    y01 = (Y == -1).astype(int)
    assert roc_auc(y01, GOOD, outlier_label=1) == 1.0
    assert roc_auc(y01, -GOOD, outlier_label=1) == 0.0
    with pytest.raises(ValueError, match="outlier_label=1"):
        roc_auc(y01, GOOD)
    with pytest.raises(ValueError, match="0 \\(inlier\\) or 1"):
        roc_auc(Y, GOOD, outlier_label=1)


def test_input_validation():
    with pytest.raises(ValueError, match="single class"):
        roc_auc(np.ones(4), GOOD[:4])
    with pytest.raises(ValueError, match="one value per label"):
        roc_auc(Y, GOOD[:3])
    with pytest.raises(ValueError, match="NaN"):
        roc_auc(Y, np.r_[GOOD[:5], np.nan])


def test_average_precision_matches_sklearn():
    rng = np.random.RandomState(0)
    y = np.where(rng.rand(100) < 0.2, -1, 1)
    scores = rng.normal(size=100) + (y == 1)
    assert average_precision(y, scores) == pytest.approx(average_precision_score(y == -1, -scores))
    assert average_precision(y, scores, positive="inlier") == pytest.approx(
        average_precision_score(y == 1, scores)
    )


def test_tnr_and_fpr_at_tpr_by_hand():
    # Accepting 3 of 4 inliers needs threshold 4: both outliers (2, 1) are rejected.
    assert tnr_at_tpr(Y, GOOD, tpr=0.75) == 1.0
    # One outlier above the third inlier: at TPR 0.75 one of two outliers is accepted.
    scores = np.array([6.0, 5.0, 3.0, 1.0, 4.0, 0.0])
    assert tnr_at_tpr(Y, scores, tpr=0.75) == 0.5
    assert fpr_at_tpr(Y, scores, tpr=0.75) == 0.5
    assert tnr_at_tpr(Y, scores, tpr=1.0) == 0.5
    with pytest.raises(ValueError, match="tpr"):
        tnr_at_tpr(Y, scores, tpr=0.0)


def test_tnr_between_levels_follows_the_flat_stretch_of_the_curve():
    # Inliers 6, 3, 2, 1 and outliers 5, 4: accepting more than one inlier (threshold <= 3)
    # accepts both outliers, so TNR is 0 anywhere strictly between TPR 0.25 and 0.5, although
    # TPR 0.25 alone is reached with no outlier accepted.
    scores = np.array([6.0, 3.0, 2.0, 1.0, 5.0, 4.0])
    assert tnr_at_tpr(Y, scores, tpr=0.25) == 1.0
    assert tnr_at_tpr(Y, scores, tpr=0.375) == 0.0
    assert fpr_at_tpr(Y, scores, tpr=0.375) == 1.0


def test_balanced_roc_auc():
    rng = np.random.RandomState(0)
    y = np.r_[np.ones(50), -np.ones(50)].astype(int)
    scores = rng.normal(size=100) + (y == 1)
    assert balanced_roc_auc(y, scores) == pytest.approx(roc_auc(y, scores))
    y_imbalanced = np.r_[np.ones(300), -np.ones(30)].astype(int)
    scores = rng.normal(size=330) + (y_imbalanced == 1)
    value = balanced_roc_auc(y_imbalanced, scores, random_state=0)
    assert value == balanced_roc_auc(y_imbalanced, scores, random_state=0)
    assert abs(value - roc_auc(y_imbalanced, scores)) < 0.1


def test_balanced_roc_auc_is_the_auc_of_balanced_subsamples_by_hand():
    """Each draw keeps as many inliers as there are outliers; its AUC is that subsample's."""
    # Inliers 5, 3, 1 and outliers 4, 2: the full AUC is 3 / 6. Keeping inliers {5, 3} wins
    # 3 of 4 pairs, {5, 1} 2 of 4, {3, 1} 1 of 4.
    y, scores = np.array([1, 1, 1, -1, -1]), np.array([5.0, 3.0, 1.0, 4.0, 2.0])
    assert roc_auc(y, scores) == 0.5
    single = {balanced_roc_auc(y, scores, n_repeats=1, random_state=seed) for seed in range(30)}
    assert single == {0.25, 0.5, 0.75}
    # The mean of n_repeats such draws: a multiple of 0.25 / 5, not always the full AUC.
    means = np.array([balanced_roc_auc(y, scores, random_state=seed) for seed in range(30)])
    np.testing.assert_allclose(means * 20, np.round(means * 20), atol=1e-12)
    assert means.min() <= 0.4 and means.max() >= 0.6
    # An unbiased estimate of the full AUC: the mean over many draws approaches it.
    assert balanced_roc_auc(y, scores, n_repeats=300, random_state=0) == pytest.approx(
        0.5, abs=0.05
    )
    # 0/1 labels with outlier_label=1 give the same draws.
    assert balanced_roc_auc(
        (y == -1).astype(int), scores, outlier_label=1, random_state=3
    ) == balanced_roc_auc(y, scores, random_state=3)


def test_f1_at_contamination_by_hand():
    assert f1_at_contamination(Y, GOOD) == 1.0
    # Flag the lowest third: scores 1 and 2 -> one outlier (0.0) and one inlier (1.0).
    scores = np.array([6.0, 5.0, 4.0, 1.0, 3.0, 2.0])
    assert f1_at_contamination(Y, scores) == pytest.approx(0.5)


def test_outlier_f1_matches_sklearn():
    y_pred = np.array([1, -1, 1, 1, -1, 1])
    assert outlier_f1(Y, y_pred) == pytest.approx(f1_score(Y == -1, y_pred == -1))
    with pytest.raises(ValueError, match="predict"):
        outlier_f1(Y, np.zeros(6))


def _outlier_data():
    # Two Gaussian blobs of inliers and uniform outliers over a wide box around them.
    rng = np.random.RandomState(0)
    inliers, _ = make_blobs(200, n_features=3, centers=[[-2] * 3, [2] * 3], random_state=0)
    outliers = rng.uniform(-8, 8, size=(80, 3))
    outliers = outliers[np.abs(outliers).max(axis=1) > 5][:20]
    X = np.vstack([inliers, outliers])
    y = np.r_[np.ones(len(inliers)), -np.ones(len(outliers))].astype(int)
    return X, y


def test_scorers_in_cross_validation_and_grid_search():
    X, y = _outlier_data()
    cv = StratifiedKFold(3, shuffle=True, random_state=0)
    forest = IsolationForest(n_estimators=50, random_state=0)
    for scorer in (outlier_auroc_scorer, outlier_average_precision_scorer):
        assert cross_val_score(forest, X, y, scoring=scorer, cv=cv).mean() > 0.9
    # decision_function through a Pipeline, as for any OutlierMixin.
    pipeline = make_pipeline(StandardScaler(), forest)
    assert cross_val_score(pipeline, X, y, scoring=outlier_auroc_scorer, cv=cv).mean() > 0.9
    assert cross_val_score(forest, X, y, scoring=outlier_f1_scorer, cv=cv).mean() > 0.5
    search = GridSearchCV(forest, {"n_estimators": [20, 50]}, scoring=outlier_auroc_scorer, cv=cv)
    assert search.fit(X, y).best_score_ > 0.9
    y01 = (y == -1).astype(int)
    scorer01 = make_outlier_scorer("roc_auc", outlier_label=1)
    np.testing.assert_allclose(
        cross_val_score(forest, X, y01, scoring=scorer01, cv=cv),
        cross_val_score(forest, X, y, scoring=outlier_auroc_scorer, cv=cv),
    )
    tnr_scorer = make_outlier_scorer("tnr_at_tpr", tpr=0.9)
    assert 0.0 <= tnr_scorer(forest.fit(X), X, y) <= 1.0
    with pytest.raises(ValueError, match="metric"):
        make_outlier_scorer("accuracy")
    with pytest.raises(TypeError, match="tpr"):
        make_outlier_scorer("roc_auc", tpr=0.9)


labels = arrays(np.int64, st.integers(4, 40), elements=st.sampled_from([-1, 1])).filter(
    lambda y: len(np.unique(y)) == 2
)


@settings(max_examples=50, deadline=None)
@given(data=st.data(), y=labels)
def test_auroc_symmetry_and_monotone_invariance(data, y):
    # Integer-valued scores keep every strictly increasing map strictly increasing in floats.
    scores = data.draw(arrays(np.int64, len(y), elements=st.integers(-1000, 1000))).astype(float)
    assert roc_auc(y, scores) + roc_auc(y, -scores) == pytest.approx(1.0)
    assert roc_auc(y, np.arctan(scores / 100) * 7 + 3) == pytest.approx(roc_auc(y, scores))
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y == -1, -scores))


@settings(max_examples=50, deadline=None)
@given(data=st.data(), y=labels)
def test_tnr_matches_np_interp_over_the_roc_curve(data, y):
    # The spec's formula np.interp(tpr, tpr_curve, 1 - fpr_curve), away from exact TPR levels
    # (where np.interp's choice among duplicate abscissae is unspecified).
    scores = data.draw(arrays(np.int64, len(y), elements=st.integers(-5, 5))).astype(float)
    fpr_curve, tpr_curve, _ = roc_curve(y == 1, scores, drop_intermediate=False)
    tpr = data.draw(st.floats(0.01, 0.99).filter(lambda t: np.abs(tpr_curve - t).min() > 1e-9))
    expected = np.interp(tpr, tpr_curve, 1 - fpr_curve)
    assert tnr_at_tpr(y, scores, tpr=tpr) == pytest.approx(expected)
