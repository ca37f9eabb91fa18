"""PostHocDetector: every score against a direct numpy computation on a hand-set classifier, the
outlier contract with labels for the score types the common checks do not run, the classifier
API, statistics, user classifiers, labels and parameters. Persistence, seeds and bad input are
checked for every detector by skood.utils.estimator_checks (tests/test_common.py)."""

import copy

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp, softmax
from sklearn.datasets import make_blobs
from sklearn.metrics import roc_auc_score
from skorch import NeuralNet
from torch import nn

from skood.nn.classifier import FeatureClassifier, as_feature_classifier
from skood.posthoc import SCORE_TYPES, PostHocDetector, default_vim_dim

TINY = {"max_epochs": 3, "hidden_dims": (16,), "device": "cpu", "random_state": 0}
N_IN, N_HIDDEN, N_CLASSES = 3, 6, 3


# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def f32(array):
    # Values a float32 network holds exactly, so float64 references match to rounding.
    return np.asarray(array, dtype=np.float32).astype(np.float64)


@pytest.fixture(scope="module")
def weights():
    rng = np.random.RandomState(42)
    return {
        "A": f32(rng.normal(size=(N_HIDDEN, N_IN))),
        "a": f32(rng.normal(size=N_HIDDEN)),
        "W": f32(rng.normal(size=(N_CLASSES, N_HIDDEN))),
        "b": f32(rng.normal(size=N_CLASSES)),
    }


def hand_set_classifier(weights) -> nn.Sequential:
    module = nn.Sequential(nn.Linear(N_IN, N_HIDDEN), nn.ReLU(), nn.Linear(N_HIDDEN, N_CLASSES))
    with torch.no_grad():
        module[0].weight.copy_(torch.tensor(weights["A"]))
        module[0].bias.copy_(torch.tensor(weights["a"]))
        module[2].weight.copy_(torch.tensor(weights["W"]))
        module[2].bias.copy_(torch.tensor(weights["b"]))
    return module


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X_train = f32(rng.normal(size=(300, N_IN)))
    y_train = rng.randint(N_CLASSES, size=300)
    X_test = f32(rng.normal(scale=2.0, size=(50, N_IN)))
    return X_train, y_train, X_test


@pytest.fixture(scope="module")
def fixed(weights, data):
    X_train, y_train, _ = data
    return PostHocDetector(classifier=hand_set_classifier(weights), device="cpu").fit(
        X_train, y_train
    )


# --------------------------------------------------------------------------- numpy references
def forward(weights, X):
    pre = X @ weights["A"].T + weights["a"]
    h = np.maximum(pre, 0.0)
    return pre, h, h @ weights["W"].T + weights["b"]


def reference_statistics(weights, X_train, y_train):
    _, h, f = forward(weights, X_train)
    classes = np.unique(y_train)
    means = np.array([h[y_train == c].mean(axis=0) for c in classes])
    centred = h - means[np.searchsorted(classes, y_train)]
    precision = np.linalg.pinv(centred.T @ centred / len(h))
    origin = -np.linalg.pinv(weights["W"]) @ weights["b"]
    shifted = h - origin
    values, vectors = np.linalg.eigh(shifted.T @ shifted / len(h))
    residual_basis = vectors[:, np.argsort(values)[::-1][default_vim_dim(N_HIDDEN) :]]
    alpha = f.max(axis=1).mean() / np.linalg.norm(shifted @ residual_basis, axis=1).mean()
    p = softmax(f, axis=1)
    templates = np.array([p[f.argmax(axis=1) == k].mean(axis=0) for k in range(N_CLASSES)])
    return {
        "h": h,
        "means": means,
        "precision": precision,
        "origin": origin,
        "residual_basis": residual_basis,
        "alpha": alpha,
        "templates": templates,
    }


def mahalanobis_distances(h, stats):
    diff = h[:, None, :] - stats["means"][None]
    return np.einsum("ncj,jk,nck->nc", diff, stats["precision"], diff)


def input_gradient(weights, pre, grad_h):
    return (grad_h * (pre > 0)) @ weights["A"]


def reference_score(score_type, weights, stats, X, *, temperature=None, percentile=0.9,
                    clip="pooled", epsilon=0.002, kl_matching="predicted"):  # fmt: skip
    T = temperature if temperature is not None else (1000.0 if score_type == "odin" else 1.0)
    pre, h, f = forward(weights, X)
    if score_type == "msp":
        return softmax(f / T, axis=1).max(axis=1)
    if score_type == "maxlogit":
        return f.max(axis=1)
    if score_type == "energy":
        return T * logsumexp(f / T, axis=1)
    if score_type == "entropy":
        p = softmax(f, axis=1)
        return np.sum(p * np.log(p), axis=1)
    if score_type == "react":
        c = np.quantile(stats["h"], percentile, axis=None if clip == "pooled" else 0)
        rectified = np.minimum(h, c) @ weights["W"].T + weights["b"]
        return T * logsumexp(rectified / T, axis=1)
    if score_type == "odin":
        # d CE(f/T, argmax f) / d f = (softmax(f/T) - onehot) / T, chained back to x.
        onehot = np.eye(N_CLASSES)[f.argmax(axis=1)]
        grad_h = ((softmax(f / T, axis=1) - onehot) / T) @ weights["W"]
        perturbed = X - epsilon * np.sign(input_gradient(weights, pre, grad_h))
        return softmax(forward(weights, perturbed)[2] / T, axis=1).max(axis=1)
    if score_type == "mahalanobis":
        if epsilon > 0:
            distances = mahalanobis_distances(h, stats)
            closest = stats["means"][distances.argmin(axis=1)]
            grad_h = 2.0 * (h - closest) @ stats["precision"]
            X = X - epsilon * np.sign(input_gradient(weights, pre, grad_h))
            h = forward(weights, X)[1]
        return -mahalanobis_distances(h, stats).min(axis=1)
    if score_type == "vim":
        residual = np.linalg.norm((h - stats["origin"]) @ stats["residual_basis"], axis=1)
        return logsumexp(f, axis=1) - stats["alpha"] * residual
    p = softmax(f, axis=1)
    templates = stats["templates"]
    kl = np.array([[np.sum(r * np.log((r + 1e-12) / (d + 1e-12))) for d in templates] for r in p])
    if kl_matching == "min":
        return -kl.min(axis=1)
    return -kl[np.arange(len(p)), f.argmax(axis=1)]


# --------------------------------------------------------------------------- exactness
CASES = [
    ("msp", {}),
    ("msp", {"temperature": 2.0}),
    ("maxlogit", {}),
    ("energy", {}),
    ("energy", {"temperature": 10.0}),
    ("entropy", {}),
    ("react", {}),
    ("react", {"react_percentile": 0.5, "temperature": 10.0}),
    ("react", {"react_clip": "per_unit", "react_percentile": 0.7}),
    ("odin", {}),
    ("odin", {"temperature": 5.0, "odin_epsilon": 0.05}),
    ("mahalanobis", {}),
    ("mahalanobis", {"mahalanobis_epsilon": 0.05}),
    ("vim", {}),
    ("kl_matching", {}),
    ("kl_matching", {"kl_matching": "min"}),
]


@pytest.mark.parametrize(("score_type", "params"), CASES, ids=lambda c: str(c))
def test_scores_equal_direct_numpy_computations(weights, data, score_type, params):
    X_train, y_train, X_test = data
    det = PostHocDetector(
        classifier=hand_set_classifier(weights), score_type=score_type, device="cpu", **params
    ).fit(X_train, y_train)
    stats = reference_statistics(weights, X_train, y_train)
    expected = reference_score(
        score_type,
        weights,
        stats,
        X_test,
        temperature=params.get("temperature"),
        percentile=params.get("react_percentile", 0.9),
        clip=params.get("react_clip", "pooled"),
        epsilon=params.get("odin_epsilon" if score_type == "odin" else "mahalanobis_epsilon",
                           0.002 if score_type == "odin" else 0.0),
        kl_matching=params.get("kl_matching", "predicted"),
    )  # fmt: skip
    np.testing.assert_allclose(det.score_samples(X_test), expected, rtol=1e-9, atol=1e-9)


def test_fitted_statistics_equal_direct_computations(fixed, weights, data):
    X_train, y_train, _ = data
    stats = reference_statistics(weights, X_train, y_train)
    np.testing.assert_allclose(fixed.class_means_, stats["means"], rtol=1e-12)
    np.testing.assert_allclose(fixed.precision_, stats["precision"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(fixed.vim_origin_, stats["origin"], rtol=1e-10)
    np.testing.assert_allclose(fixed.vim_alpha_, stats["alpha"], rtol=1e-10)
    np.testing.assert_allclose(fixed.kl_templates_, stats["templates"], rtol=1e-12)
    np.testing.assert_allclose(fixed.react_threshold_, [np.quantile(stats["h"], 0.9)])
    np.testing.assert_allclose(fixed.kl_templates_.sum(axis=1), 1.0)


@settings(max_examples=25, deadline=None)
@given(
    logits=st.lists(
        st.lists(st.floats(-30, 30), min_size=N_CLASSES, max_size=N_CLASSES),
        min_size=1, max_size=6,
    ),
    temperature=st.floats(0.1, 100.0),
)  # fmt: skip
def test_logit_scores_obey_their_bounds(fixed, logits, temperature):
    # Hand-set the head to the identity on features = inputs: the logits are the inputs.
    det = copy.deepcopy(fixed)
    body = nn.Identity()
    head = nn.Linear(N_CLASSES, N_CLASSES)
    with torch.no_grad():
        head.weight.copy_(torch.eye(N_CLASSES))
        head.bias.zero_()
    det.net_.module_ = FeatureClassifier(body, head)
    det.n_features_in_ = N_CLASSES
    f = np.array(logits)
    scores = {}
    for score_type in ("msp", "maxlogit", "energy", "entropy"):
        det.set_params(score_type=score_type, temperature=temperature)
        scores[score_type] = det.score_samples(f)
    assert np.all(scores["msp"] >= 1.0 / N_CLASSES - 1e-12) and np.all(scores["msp"] <= 1 + 1e-12)
    # T * logsumexp(f / T) lies between max f and max f + T log M.
    assert np.all(scores["energy"] >= scores["maxlogit"] - 1e-9)
    assert np.all(scores["energy"] <= scores["maxlogit"] + temperature * np.log(N_CLASSES) + 1e-9)
    # Minus the entropy lies in [-log M, 0].
    assert np.all(scores["entropy"] <= 1e-12)
    assert np.all(scores["entropy"] >= -np.log(N_CLASSES) - 1e-9)


def test_react_at_the_largest_activation_equals_energy_on_training_data(weights, data):
    X_train, y_train, _ = data
    det = PostHocDetector(
        classifier=hand_set_classifier(weights), score_type="react", react_percentile=1.0,
        device="cpu",
    ).fit(X_train, y_train)  # fmt: skip
    react = det.score_samples(X_train)
    energy = det.set_params(score_type="energy").score_samples(X_train)
    np.testing.assert_allclose(react, energy, rtol=1e-12)


# --------------------------------------------------------------------------- the contract
@pytest.fixture(scope="module")
def blobs():
    X, y = make_blobs(n_samples=300, centers=3, random_state=0)
    return X, y


# The common checks (tests/test_common.py) run the contract with labels for these score types.
CHECKED_SCORE_TYPES = {"energy", "odin", "vim"}


@pytest.mark.parametrize("score_type", [s for s in SCORE_TYPES if s not in CHECKED_SCORE_TYPES])
def test_outlier_contract_with_labels(blobs, score_type):
    # sklearn's check_outliers_train and check_outliers_fit_predict fit without y; the same
    # assertions, with the labels this detector needs, for the other score types.
    X, y = blobs
    det = PostHocDetector(score_type=score_type, contamination=0.1, **TINY)
    labels = det.fit_predict(X, y)
    assert labels.dtype.kind == "i" and set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels, det.fit(X, y).predict(X))
    scores, decision = det.score_samples(X), det.decision_function(X)
    assert scores.dtype == np.float64 and scores.shape == (len(X),)
    np.testing.assert_allclose(decision, scores - det.offset_)
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))
    assert det.offset_ == np.percentile(scores, 10)
    assert abs(np.sum(labels == -1) - 30) <= 1  # ties aside, the contamination fraction
    with pytest.raises(ValueError, match="X has 300 features, but PostHocDetector is expecting 2"):
        det.score_samples(X.T)


CENTRES = [[-4, 0, 0, 0], [4, 0, 0, 0], [0, 4, 0, 0]]


@pytest.fixture(scope="module")
def three_blobs():
    X, y = make_blobs(n_samples=600, centers=CENTRES, random_state=1)
    det = PostHocDetector(max_epochs=15, hidden_dims=(32, 16), device="cpu", random_state=0)
    return det.fit(X, y), make_blobs(n_samples=200, centers=CENTRES, random_state=3)[0]


@pytest.mark.parametrize(
    ("score_type", "where"),
    [("mahalanobis", "far"), ("vim", "far"), ("kl_matching", "far"), ("msp", "between"),
     ("maxlogit", "between"), ("energy", "between"), ("entropy", "between"),
     ("odin", "between"), ("react", "between")],
)  # fmt: skip
def test_separates_an_obvious_ood_cluster(three_blobs, score_type, where):
    # Logit scores of a ReLU network grow without bound far from the data (Hein et al., CVPR
    # 2019), so they are tested where the classifier is unsure: between the classes. Feature
    # space scores (Mahalanobis, ViM) and KL-Matching catch the far cluster.
    det, X_id = three_blobs
    rng = np.random.RandomState(2)
    if where == "far":
        X_ood = rng.normal(size=(100, 4)) + np.array([0, -4, 25, -25])
    else:
        X_ood = rng.normal(scale=0.3, size=(100, 4)) + np.array([0, 1.3, 0, 0])
    scores = det.set_params(score_type=score_type).score_samples(np.vstack([X_id, X_ood]))
    assert roc_auc_score(np.r_[np.ones(200), np.zeros(100)], scores) > 0.9


def test_classifier_predictions(blobs):
    X, y = blobs
    labels = np.array(["a", "b", "c"])[y]
    det = PostHocDetector(**{**TINY, "max_epochs": 10, "batch_size": 32}).fit(X, labels)
    np.testing.assert_array_equal(det.classes_, ["a", "b", "c"])
    assert np.mean(det.predict_class(X) == labels) > 0.9
    proba = det.predict_class_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(det.predict_class(X), det.classes_[proba.argmax(axis=1)])
    assert len(det.history_) == 10 and det.history_[-1, "train_accuracy"] > 0.9


def test_score_type_switches_without_refitting(fixed, data):
    _, _, X_test = data
    det = copy.deepcopy(fixed)
    energy = det.set_params(score_type="energy").score_samples(X_test)
    msp = det.set_params(score_type="msp").score_samples(X_test)
    assert not np.allclose(energy, msp)
    np.testing.assert_array_equal(det.set_params(score_type="energy").score_samples(X_test), energy)
    # offset_ thresholds the fitted score: the other scores need fit_statistics first.
    det.set_params(score_type="msp")
    with pytest.raises(ValueError, match="offset_ was set for score_type='energy'"):
        det.predict(X_test)
    det.fit_statistics(X_test)
    msp = det.score_samples(X_test)
    assert det.offset_ == np.percentile(msp, 10)
    np.testing.assert_array_equal(det.predict(X_test), np.where(msp < det.offset_, -1, 1))


def test_fit_statistics_on_other_data_and_stale_parameters(fixed, weights, data):
    X_train, _, X_test = data
    det = copy.deepcopy(fixed).set_params(score_type="react")
    det.set_params(react_percentile=0.5)
    with pytest.raises(ValueError, match="react_percentile.*fit_statistics"):
        det.score_samples(X_test)
    det.fit_statistics(X_test)
    _, h_test, _ = forward(weights, X_test)
    np.testing.assert_allclose(det.react_threshold_, [np.quantile(h_test, 0.5)])
    assert det.offset_ == np.percentile(det.score_samples(X_test), 10)
    # Without labels the Mahalanobis means follow the predicted classes.
    predicted = forward(weights, X_test)[2].argmax(axis=1)
    expected = [h_test[predicted == c].mean(axis=0) for c in np.unique(predicted)]
    np.testing.assert_allclose(det.class_means_, expected, rtol=1e-12)
    det.set_params(vim_dim=N_HIDDEN)
    with pytest.raises(ValueError, match="vim_dim"):
        det.fit_statistics(X_test)


# --------------------------------------------------------------------------- user classifiers
class FeaturesAndHead(nn.Module):
    def __init__(self, weights, *, consistent=True):
        super().__init__()
        seq = hand_set_classifier(weights)
        self.body, self.head = seq[:2], seq[2]
        self.consistent = consistent

    def features(self, x):
        return self.body(x)

    def forward(self, x):
        logits = self.head(self.body(x))
        return logits if self.consistent else logits + 1.0


def test_user_module_forms_give_the_same_scores(weights, data):
    X_train, y_train, X_test = data
    expected = None
    net = NeuralNet(hand_set_classifier(weights), criterion=nn.CrossEntropyLoss).initialize()
    for module in (hand_set_classifier(weights), FeaturesAndHead(weights), net):
        det = PostHocDetector(classifier=module, score_type="vim", device="cpu")
        scores = det.fit(X_train, y_train).score_samples(X_test)
        expected = scores if expected is None else expected
        np.testing.assert_allclose(scores, expected, rtol=1e-12)
        np.testing.assert_array_equal(det.classes_, np.arange(N_CLASSES))
        assert len(det.history_) == 0  # adopted, not trained


def test_user_module_is_neither_trained_nor_changed(weights, data):
    X_train, y_train, _ = data
    module = hand_set_classifier(weights).train()
    before = copy.deepcopy(module.state_dict())
    PostHocDetector(classifier=module, device="cpu").fit(X_train, y_train)
    assert module.training
    assert all(p.requires_grad for p in module.parameters())
    for key, value in module.state_dict().items():
        torch.testing.assert_close(value, before[key], rtol=0, atol=0)


def test_bad_user_classifiers(weights, data):
    X_train, y_train, _ = data
    with pytest.raises(ValueError, match="head\\(features"):
        PostHocDetector(classifier=FeaturesAndHead(weights, consistent=False), device="cpu").fit(
            X_train, y_train
        )
    with pytest.raises(TypeError, match="penultimate"):
        PostHocDetector(classifier=nn.Linear(N_IN, N_CLASSES), device="cpu").fit(X_train, y_train)
    unfitted = NeuralNet(hand_set_classifier(weights), criterion=nn.CrossEntropyLoss)
    with pytest.raises(ValueError, match="not fitted"):
        PostHocDetector(classifier=unfitted, device="cpu").fit(X_train, y_train)
    with pytest.raises(ValueError, match="outside \\[0, 3\\)"):
        PostHocDetector(classifier=hand_set_classifier(weights), device="cpu").fit(
            X_train, y_train + 1
        )
    with pytest.raises(ValueError, match="integer class indices"):
        PostHocDetector(classifier=hand_set_classifier(weights), device="cpu").fit(
            X_train, np.array(["a", "b", "c"])[y_train]
        )


def test_as_feature_classifier_splits_features_and_head(weights):
    adapted = as_feature_classifier(hand_set_classifier(weights))
    x = torch.randn(5, N_IN)
    torch.testing.assert_close(adapted(x), hand_set_classifier(weights)(x))
    assert adapted.features(x).shape == (5, N_HIDDEN) and adapted.n_classes == N_CLASSES


# --------------------------------------------------------------------------- labels and input
@pytest.mark.parametrize(
    ("make_y", "error", "match"),
    [
        (lambda y: None, ValueError, "requires y to be passed"),
        (lambda y: np.zeros(len(y)), ValueError, "at least 2 classes"),
        (lambda y: y + np.linspace(0, 0.5, len(y)), ValueError, "Unknown label type"),
        (lambda y: y[:-1], ValueError, "inconsistent numbers of samples"),
        (lambda y: np.where(np.arange(len(y)) == 3, np.nan, y), ValueError, "NaN"),
        (lambda y: np.c_[y, y], ValueError, "1d array"),
    ],
    ids=["none", "one-class", "continuous", "length", "nan", "2d"],
)
def test_bad_labels_are_clear_errors(blobs, make_y, error, match):
    X, y = blobs
    det = PostHocDetector(**TINY)
    with pytest.raises(error, match=match):
        det.fit(X, make_y(y.astype(float)))
    assert not hasattr(det, "classes_")
    with pytest.raises(error, match=match):
        PostHocDetector(**TINY).fit_predict(X, make_y(y.astype(float)))


def test_bad_parameters(blobs):
    # Bad input: check_bad_input_at_fit (tests/test_common.py).
    X, y = blobs
    for params, match in (
        ({"score_type": "gradnorm"}, "'score_type' parameter"),
        ({"react_percentile": 0.0}, "'react_percentile' parameter"),
        ({"temperature": 0.0}, "'temperature' parameter"),
        ({"hidden_dims": (0,)}, "'hidden_dims' parameter .* must be a non-empty tuple"),
        ({"input_shape": (1, 3, 3)}, r"input_shape=\(1, 3, 3\) must be \(channels"),
    ):
        with pytest.raises(ValueError, match=match):
            PostHocDetector(**{**TINY, **params}).fit(X, y)
    with pytest.raises(ValueError, match="vim_dim"):
        PostHocDetector(**{**TINY, "vim_dim": 16}).fit(X, y)


# --------------------------------------------------------------------------- persistence, seeds


@pytest.mark.parametrize("score_type", ["odin", "mahalanobis"])
def test_gradient_scores_do_not_depend_on_the_batch(blobs, score_type):
    X, y = blobs
    det = PostHocDetector(score_type=score_type, mahalanobis_epsilon=0.01, **TINY).fit(X, y)
    whole = det.score_samples(X)
    # float64 matrix products round differently per batch size: equal to ~1e-11, not exactly.
    np.testing.assert_allclose(det.set_params(inference_batch_size=7).score_samples(X), whole,
                               rtol=1e-9)  # fmt: skip
    np.testing.assert_allclose(det.score_samples(X[40:45]), whole[40:45], rtol=1e-9)


def test_images():
    rng = np.random.RandomState(0)
    y = rng.randint(2, size=80)
    # Class 1 is bright in the left half: a convolutional network learns it at once.
    images = rng.uniform(-1, 0, size=(80, 1, 8, 8)).astype(np.float32)
    images[y == 1, :, :, :4] += 1.0
    X = images.reshape(80, -1)
    det = PostHocDetector(input_shape=(1, 8, 8), hidden_dims=(16,), max_epochs=8, device="cpu",
                          random_state=0, score_type="odin").fit(X, y)  # fmt: skip
    assert det.input_scale_.tolist() == [1.0] * 64  # images are not standardized
    assert np.mean(det.predict_class(X) == y) > 0.9
    for score_type in SCORE_TYPES:
        scores = det.set_params(score_type=score_type).score_samples(X)
        assert scores.dtype == np.float64 and np.all(np.isfinite(scores))
