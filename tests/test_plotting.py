import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.ensemble import IsolationForest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import auc

from skood import AutoencoderDetector, DLSGANDetector
from skood.metrics import roc_auc
from skood.plotting import (
    plot_image_grid,
    plot_latent_spectrum,
    plot_roc_curves,
    plot_score_histograms,
)

plt = pytest.importorskip("matplotlib.pyplot")


@pytest.fixture(scope="module")
def labelled_scores():
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(200), -np.ones(40)]
    scores = np.r_[rng.normal(1.0, 1.0, 200), rng.normal(-1.0, 1.0, 40)]
    return y, scores


@pytest.fixture(scope="module")
def fitted_gans():
    X = np.random.default_rng(0).normal(size=(96, 5))
    params = dict(latent_dim=4, hidden_dims=(16,), max_epochs=3, random_state=0)
    return {
        "DLSGAN": DLSGANDetector(**params).fit(X),
        "MSEGAN": DLSGANDetector(variant="msegan", **params).fit(X),
    }


# ---------------------------------------------------------------- histograms
def test_histograms_split_inliers_and_outliers_on_shared_bins(labelled_scores):
    y, scores = labelled_scores
    ax = plot_score_histograms(y, scores, bins=12, density=False)
    inlier_bars, outlier_bars = ax.containers
    assert len(inlier_bars) == len(outlier_bars) == 12
    assert sum(bar.get_height() for bar in inlier_bars) == 200
    assert sum(bar.get_height() for bar in outlier_bars) == 40
    # Shared edges: both classes' bars start at the same x positions.
    assert [b.get_x() for b in inlier_bars] == [b.get_x() for b in outlier_bars]
    legend = [text.get_text() for text in ax.get_legend().get_texts()]
    assert legend == ["inliers (200)", "outliers (40)"]


def test_histograms_density_integrates_to_one(labelled_scores):
    y, scores = labelled_scores
    ax = plot_score_histograms(y, scores, bins=20)
    for bars in ax.containers:
        area = sum(bar.get_height() * bar.get_width() for bar in bars)
        assert area == pytest.approx(1.0)


def test_histograms_clip_long_tails(labelled_scores):
    y, scores = labelled_scores
    scores = scores.copy()
    scores[0] = -1e6  # one extreme score would otherwise take all the range
    ax = plot_score_histograms(y, scores, clip_percentile=1)
    left = min(bar.get_x() for bar in ax.containers[0])
    assert left == pytest.approx(np.percentile(scores, 1))
    with pytest.raises(ValueError, match="clip_percentile"):
        plot_score_histograms(y, scores, clip_percentile=50)


def test_histograms_accept_odds_labels_and_draw_on_given_axes(labelled_scores):
    y, scores = labelled_scores
    _, ax = plt.subplots()
    returned = plot_score_histograms((y == -1).astype(int), scores, outlier_label=1, ax=ax)
    assert returned is ax
    with pytest.raises(ValueError, match="outlier_label=1"):
        plot_score_histograms((y == -1).astype(int), scores)


def test_histograms_reject_bad_scores(labelled_scores):
    y, scores = labelled_scores
    with pytest.raises(ValueError, match="NaN"):
        plot_score_histograms(y, np.r_[np.nan, scores[1:]])
    with pytest.raises(ValueError, match="one value per label"):
        plot_score_histograms(y, scores[:-1])


# ---------------------------------------------------------------- ROC curves
def test_roc_curves_match_skood_roc_auc(labelled_scores):
    y, scores = labelled_scores
    named = {"model": scores, "reversed": -scores}
    ax = plot_roc_curves(y, named)
    curves = ax.get_lines()[:2]
    for line, (name, values) in zip(curves, named.items(), strict=True):
        fpr, tpr = line.get_xdata(), line.get_ydata()
        assert (fpr[0], tpr[0]) == (0.0, 0.0)
        assert (fpr[-1], tpr[-1]) == (1.0, 1.0)
        # The drawn curve encloses the area the metric reports.
        assert auc(fpr, tpr) == pytest.approx(roc_auc(y, values))
        assert line.get_label() == f"{name} (AUROC {roc_auc(y, values):.3f})"
    assert len(ax.get_lines()) == 3  # the two curves and the chance diagonal


def test_roc_curves_of_a_single_array_and_errors(labelled_scores):
    y, scores = labelled_scores
    ax = plot_roc_curves(y, scores)
    assert ax.get_lines()[0].get_label().startswith("scores (AUROC")
    with pytest.raises(ValueError, match="empty"):
        plot_roc_curves(y, {})
    with pytest.raises(ValueError, match="single class"):
        plot_roc_curves(np.ones_like(y), scores)


@settings(max_examples=30, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.booleans(), st.floats(-1e6, 1e6, allow_nan=False)), min_size=2, max_size=60
    ).filter(lambda rows: 0 < sum(outlier for outlier, _ in rows) < len(rows))
)
def test_drawn_roc_area_and_histogram_counts_for_any_scores(data):
    """Ties, repeated values and extreme spreads: the curve still encloses roc_auc, and the
    histograms still count every sample once."""
    y = np.array([-1 if outlier else 1 for outlier, _ in data])
    scores = np.array([score for _, score in data])
    ax = plot_roc_curves(y, scores)
    line = ax.get_lines()[0]
    assert auc(line.get_xdata(), line.get_ydata()) == pytest.approx(roc_auc(y, scores))
    ax = plot_score_histograms(y, scores, density=False, bins=7)
    counts = [sum(bar.get_height() for bar in bars) for bars in ax.containers]
    assert counts == [np.sum(y == 1), np.sum(y == -1)]
    plt.close("all")


# ---------------------------------------------------------------- image grids
def test_image_grid_draws_each_row_in_order():
    rng = np.random.default_rng(0)
    rows = {"a": rng.uniform(-1, 1, (12, 784)), "b": rng.uniform(-1, 1, (3, 28, 28))}
    figure = plot_image_grid(rows, n_columns=5)
    axes = np.array(figure.axes).reshape(2, 5)
    np.testing.assert_allclose(axes[0, 0].images[0].get_array(), rows["a"][0].reshape(28, 28))
    np.testing.assert_allclose(axes[0, 4].images[0].get_array(), rows["a"][4].reshape(28, 28))
    np.testing.assert_allclose(axes[1, 2].images[0].get_array(), rows["b"][2])
    assert not axes[1, 3].images and not axes[1, 3].axison  # row "b" has 3 images
    assert [axes[0, 0].get_ylabel(), axes[1, 0].get_ylabel()] == ["a", "b"]
    assert axes[0, 0].images[0].get_clim() == (-1.0, 1.0)


def test_image_grid_reads_channels_first_colour_and_value_range():
    images = np.zeros((2, 3, 4, 6))
    images[:, 0] = 255.0  # red
    figure = plot_image_grid(
        {"red": images.reshape(2, -1)}, image_shape=(3, 4, 6), value_range=(0, 255), n_columns=2
    )
    drawn = figure.axes[0].images[0].get_array()
    assert drawn.shape == (4, 6, 3)
    np.testing.assert_allclose(drawn[..., 0], 1.0)
    np.testing.assert_allclose(drawn[..., 1:], 0.0)


def test_image_grid_rejects_what_it_cannot_draw():
    with pytest.raises(ValueError, match="not square"):
        plot_image_grid({"x": np.zeros((2, 10))})
    with pytest.raises(ValueError, match="does not hold"):
        plot_image_grid({"x": np.zeros((2, 10))}, image_shape=(1, 3, 3))
    with pytest.raises(ValueError, match="1 or 3 channels"):
        plot_image_grid({"x": np.zeros((2, 2, 4, 4))})
    with pytest.raises(ValueError, match="empty"):
        plot_image_grid({})
    with pytest.raises(ValueError, match="value_range"):
        plot_image_grid({"x": np.zeros((2, 4))}, value_range=(1, 1))


# ---------------------------------------------------------------- latent spectrum
def test_latent_spectrum_draws_the_sorted_traced_variance(fitted_gans):
    ax = plot_latent_spectrum(fitted_gans)
    assert ax.get_yscale() == "log"
    for line, (name, detector) in zip(ax.get_lines(), fitted_gans.items(), strict=True):
        assert line.get_label() == name
        np.testing.assert_allclose(line.get_ydata(), np.sort(detector.latent_variance_)[::-1])


def test_latent_spectrum_per_epoch_has_one_line_per_epoch(fitted_gans):
    detector = fitted_gans["DLSGAN"]
    ax = plot_latent_spectrum(detector, per_epoch=True)
    lines = ax.get_lines()
    assert len(lines) == 3  # max_epochs
    # The last epoch's line is the fitted spectrum.
    np.testing.assert_allclose(
        lines[-1].get_ydata(), np.sort(detector.latent_variance_)[::-1], rtol=1e-6
    )


def test_latent_spectrum_errors():
    with pytest.raises(NotFittedError):
        plot_latent_spectrum(DLSGANDetector())
    with pytest.raises(TypeError, match="traces no latent variance"):
        plot_latent_spectrum(AutoencoderDetector())
    with pytest.raises(TypeError, match="traces no latent variance"):
        plot_latent_spectrum({"forest": IsolationForest()})


# ---------------------------------------------------------------- without matplotlib
def test_a_clear_error_without_matplotlib(monkeypatch, labelled_scores):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"skood\[plot\]"):
        plot_score_histograms(*labelled_scores)
