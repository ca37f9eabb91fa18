"""DMRDetector: synthesis against direct computations, the outlier contract with labels for the
syntheses the common checks do not run, the generator and classifier options, augmentation,
images and bad parameters and labels. Persistence, seeds, clones and bad input are checked for
every detector by skood.utils.estimator_checks (tests/test_common.py)."""

import copy
from itertools import combinations, product

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.base import BaseEstimator
from sklearn.datasets import make_blobs
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from skood import AutoencoderDetector, DLSGANDetector
from skood.dmr import DMRDetector, augment_images
from skood.posthoc import PostHocDetector

GEN = {"max_epochs": 3, "latent_dim": 4, "hidden_dims": (16,), "device": "cpu", "random_state": 0}
TINY = {"classifier_epochs": 3, "max_epochs": 3, "hidden_dims": (16,), "device": "cpu",
        "random_state": 0}  # fmt: skip
# Enough steps for the classifier and B to learn the blobs (still well under a second).
TRAINED = {
    **TINY,
    "classifier_epochs": 10,
    "classifier_batch_size": 32,
    "max_epochs": 10,
    "batch_size": 32,
    "hidden_dims": (32, 16),
}
CENTRES = [[-4, 0, 0, 0], [4, 0, 0, 0], [0, 4, 0, 0], [0, -4, 0, 0]]


class IdentityCoder(BaseEstimator):
    """E and G are the identity: synthetic outliers are the latent arithmetic itself."""

    def fit(self, X, y=None):
        self.n_features_in_ = np.asarray(X).shape[1]
        return self

    def transform(self, X):
        return np.asarray(X, dtype=np.float64)

    def inverse_transform(self, X):
        return np.asarray(X, dtype=np.float64)


# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


def identity_dmr(**params) -> DMRDetector:
    return DMRDetector(**{**TINY, "generator": IdentityCoder(), "standardize": False, **params})


@pytest.fixture(scope="module")
def blobs():
    return make_blobs(n_samples=400, centers=CENTRES, random_state=1)


@pytest.fixture(scope="module")
def generator(blobs):
    return DLSGANDetector(**{**GEN, "max_epochs": 10, "hidden_dims": (32, 32)}).fit(blobs[0])


@pytest.fixture(scope="module")
def fitted(blobs, generator):
    return DMRDetector(generator=generator, **TRAINED).fit(*blobs)


# --------------------------------------------------------------------------- synthesis
def test_one_sample_per_class_has_no_marginal_part():
    # Each class mean is its only sample, so every marginal code is 0 and DMR outliers decode
    # G(0) = 0; MLM mixes k = 2 of the 3 distinct samples.
    X = np.array([[1.0, 0.0], [0.0, 2.0], [4.0, 4.0]])
    y = np.array([0, 1, 2])
    det = identity_dmr(k=2, synthesis="mlm+dmr").fit(X, y)
    np.testing.assert_array_equal(det.synthesize(20, random_state=0), 0.0)
    det.set_params(synthesis="mlm")
    mixes = {tuple((X[a] + X[b]) / 2) for a, b in combinations(range(3), 2)}
    rows = {tuple(row) for row in det.synthesize(200, random_state=0)}
    assert rows == mixes  # every pair appears and a class is never mixed with itself


@pytest.mark.parametrize("emphasis_mode", ["uniform", "binary"])
def test_mixed_marginal_codes_equal_the_direct_formula(emphasis_mode):
    # Two samples per class: x - mu_y is +-d_y / 2. With k = all 3 classes an outlier is
    # lambda * (1/3) * sum_y (+-d_y / 2) for one sign per class.
    X = np.array([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [5.0, 9.0], [-3.0, 1.0], [3.0, 11.0]])
    y = np.array([0, 0, 1, 1, 2, 2])
    half = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 5.0]])
    det = identity_dmr(k=3, emphasis=(1.0, 3.0), emphasis_mode=emphasis_mode).fit(X, y)
    np.testing.assert_array_equal(det.class_latent_means_, [[1, 0], [5, 7], [0, 6]])
    outliers = det.synthesize(300, random_state=0)
    bases = np.array([np.array(signs) @ half / 3 for signs in product([-1, 1], repeat=3)])
    emphases = []
    for row in outliers:
        # The emphasis is the ratio to the base the row is a multiple of.
        ratios = (row @ bases.T) / np.sum(bases**2, axis=1)
        match = np.flatnonzero(
            np.all(np.isclose(ratios[:, None] * bases, row), axis=1) & (ratios > 0)
        )
        assert match.size >= 1
        emphases.append(ratios[match[0]])
    emphases = np.array(emphases)
    assert np.all((emphases >= 1 - 1e-9) & (emphases <= 3 + 1e-9))
    if emphasis_mode == "binary":
        assert set(np.round(emphases, 9)) == {1.0, 3.0}
    else:
        assert np.unique(np.round(emphases, 6)).size > 250  # a continuum, not two values


def test_single_latent_dmr_and_k_larger_than_the_classes():
    X = np.array([[0.0, 0.0], [2.0, 0.0], [5.0, 5.0], [5.0, 9.0]])
    y = np.array([0, 0, 1, 1])
    det = identity_dmr(synthesis="dmr", emphasis=(2.0, 2.0)).fit(X, y)
    # G(2 * (x - mu_y)) for a single sample: +-(2, 0) for class 0, +-(0, 4) for class 1.
    rows = {tuple(row) for row in det.synthesize(100, random_state=0)}
    assert rows == {(2.0, 0.0), (-2.0, 0.0), (0.0, 4.0), (0.0, -4.0)}
    # k = 5 with 2 classes mixes both classes once each.
    det = identity_dmr(k=5, emphasis=(1.0, 1.0)).fit(X, y)
    rows = {tuple(row) for row in det.synthesize(100, random_state=0)}
    assert rows == {(s0 + 0.0, s1 + 0.0) for s0 in (-0.5, 0.5) for s1 in (-1.0, 1.0)}


def test_synthetic_outliers_have_the_data_shape_and_differ_from_it(blobs, fitted):
    X, _ = blobs
    outliers = fitted.synthesize(300, random_state=0)
    assert outliers.shape == (300, X.shape[1]) and outliers.dtype == np.float64
    assert np.all(np.isfinite(outliers))
    nearest = np.min(np.linalg.norm(outliers[:, None] - X[None], axis=2), axis=1)
    assert np.all(nearest > 1e-6)  # none is a copy of a training row
    # The rejection network learned to tell them apart from the training data.
    assert np.mean(fitted.ood_probability(outliers)) > np.mean(fitted.ood_probability(X)) + 0.15
    np.testing.assert_array_equal(
        fitted.synthesize(5, random_state=3), fitted.synthesize(5, random_state=3)
    )
    with pytest.raises(ValueError, match="n_samples"):
        fitted.synthesize(0)


def test_outliers_decode_marginal_codes_through_the_dlsgan_latent_scale(blobs, generator):
    """With a DLSGAN generator and a fixed emphasis 2, every "dmr" outlier is
    G(2 * (E(x_j) - mu_{y_j}) * s) for some training row j, computed from the networks."""
    X, y = blobs
    det = DMRDetector(generator=generator, synthesis="dmr", emphasis=(2.0, 2.0), **TINY)
    det.fit(X, y)
    gen_net = copy.deepcopy(generator.net_.module_).double().eval()
    encoder = copy.deepcopy(generator.net_.discriminator_).double().eval()
    standardized = (X - generator.input_mean_) / generator.input_scale_
    with torch.no_grad():
        codes = encoder(torch.as_tensor(standardized))[1].numpy()
    # DMR encodes X after a float32 round trip through its own standardization.
    np.testing.assert_allclose(det.latent_codes_, codes, rtol=1e-5, atol=1e-6)
    means = np.array([codes[y == label].mean(axis=0) for label in range(4)])
    np.testing.assert_allclose(det.class_latent_means_, means, rtol=1e-6, atol=1e-7)
    variance = generator.latent_variance_
    scale = np.sqrt(len(variance) * variance / variance.sum())
    assert np.abs(scale - 1.0).max() > 0.05  # decoding without it gives other rows
    # The decoder sees the codes and class means DMR keeps (checked just above).
    marginal = 2.0 * (det.latent_codes_ - det.class_latent_means_[y])
    with torch.no_grad():
        candidates = gen_net.network(torch.as_tensor(marginal * scale)).numpy()
    candidates = candidates * generator.input_scale_ + generator.input_mean_
    outliers = det.synthesize(50, random_state=0)
    distance = np.abs(outliers[:, None, :] - candidates[None]).max(axis=2)
    nearest = distance.argmin(axis=1)
    np.testing.assert_allclose(outliers, candidates[nearest], rtol=1e-10, atol=1e-10)
    assert np.unique(nearest).size > 40  # many different training rows, not one


def test_scores_are_minus_the_rejection_logit_of_the_classifier_features(blobs, fitted):
    """score_samples(x) = -B(F(x)) on the standardized rows, with B = Linear-ReLU-Linear."""
    X, _ = blobs
    classifier = copy.deepcopy(fitted.net_.classifier_).double().eval()
    head = fitted.net_.module_
    w1, b1 = head.hidden.weight.detach().double().numpy(), head.hidden.bias.detach().numpy()
    w2, b2 = head.output.weight.detach().double().numpy(), head.output.bias.detach().numpy()
    with torch.no_grad():
        features = classifier.features(
            torch.as_tensor((X - fitted.input_mean_) / fitted.input_scale_)
        ).numpy()
    logits = (np.maximum(features @ w1.T + b1, 0.0) @ w2.T + b2)[:, 0]
    np.testing.assert_allclose(fitted.score_samples(X), -logits, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(fitted.ood_probability(X), expit(logits), rtol=1e-9)


# --------------------------------------------------------------------------- the contract
# synthesis="mlm+dmr" (the default): the common checks (tests/test_common.py).
@pytest.mark.parametrize("synthesis", ["mlm", "dmr"])
def test_outlier_contract_with_labels(blobs, generator, synthesis):
    X, y = blobs
    det = DMRDetector(generator=generator, synthesis=synthesis, contamination=0.1, **TINY)
    labels = det.fit_predict(X, y)
    assert labels.dtype.kind == "i" and set(np.unique(labels)) == {-1, 1}
    np.testing.assert_array_equal(labels, det.fit(X, y).predict(X))
    scores, decision = det.score_samples(X), det.decision_function(X)
    assert scores.dtype == np.float64 and scores.shape == (len(X),)
    np.testing.assert_allclose(decision, scores - det.offset_)
    np.testing.assert_array_equal(labels, np.where(decision < 0, -1, 1))
    assert abs(np.sum(labels == -1) - 40) <= 1
    np.testing.assert_allclose(det.ood_probability(X), expit(-scores))
    with pytest.raises(ValueError, match="X has 400 features, but DMRDetector is expecting 4"):
        det.score_samples(X.T)


@pytest.mark.parametrize("synthesis", ["mlm+dmr", "mlm"])
def test_separates_a_class_free_cluster(blobs, synthesis):
    # With E = G = identity the synthetic outliers are mixed marginal codes: points without
    # the class content, around the origin between the four classes. B, on the classifier's
    # features, must then flag a cluster there; a GAN of the blobs would decode similar
    # points, less exactly.
    X, y = blobs
    det = identity_dmr(synthesis=synthesis, **{**TRAINED, "standardize": True}).fit(X, y)
    X_id, y_id = make_blobs(n_samples=200, centers=CENTRES, random_state=3)
    X_ood = np.random.RandomState(2).normal(scale=0.5, size=(100, 4))
    scores = det.score_samples(np.vstack([X_id, X_ood]))
    assert roc_auc_score(np.r_[np.ones(200), np.zeros(100)], scores) > 0.95
    assert np.mean(det.predict(X_ood) == -1) > 0.8
    assert np.mean(det.predict_class(X_id) == y_id) > 0.95


def test_classifier_predictions_and_histories(blobs, fitted):
    X, y = blobs
    assert np.mean(fitted.predict_class(X) == y) > 0.9
    np.testing.assert_allclose(fitted.predict_class_proba(X).sum(axis=1), 1.0)
    assert len(fitted.classifier_history_) == TRAINED["classifier_epochs"]
    assert len(fitted.history_) == TRAINED["max_epochs"]
    # Cosine annealing of B's learning rate from 0.01 to 0 over the epochs.
    epochs = np.arange(TRAINED["max_epochs"])
    expected = 0.005 * (1 + np.cos(np.pi * epochs / TRAINED["max_epochs"]))
    np.testing.assert_allclose(fitted.history_[:, "event_lr"], expected)
    assert fitted.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(0.0, abs=1e-12)


# --------------------------------------------------------------------------- options
def test_generator_handling(blobs, generator):
    X, y = blobs
    det = DMRDetector(generator=generator, **TINY).fit(X, y)
    assert det.generator_ is generator  # a fitted generator is used as it is
    unfitted = AutoencoderDetector(**GEN)
    det = DMRDetector(generator=unfitted, **TINY).fit(X, y)
    with pytest.raises(NotFittedError):
        unfitted.transform(X)  # the user's estimator is cloned, not fitted
    assert isinstance(det.generator_, AutoencoderDetector)
    assert det.synthesize(3, random_state=0).shape == (3, 4)
    with pytest.raises(ValueError, match="expects 4 features"):
        DMRDetector(generator=generator, **TINY).fit(X[:, :3], y)


def test_default_generator_is_a_dlsgan(blobs):
    X, y = blobs
    det = DMRDetector(**TINY).fit(X[:120], y[:120])
    assert isinstance(det.generator_, DLSGANDetector)
    assert det.generator_.random_state is not None


def test_generator_random_state_comes_from_the_detector(blobs):
    X, y = blobs
    gen = AutoencoderDetector(**{**GEN, "random_state": None})
    first = DMRDetector(generator=gen, **TINY).fit(X, y)
    second = DMRDetector(generator=gen, **TINY).fit(X, y)
    np.testing.assert_array_equal(first.score_samples(X), second.score_samples(X))


def test_shared_classifier_from_a_posthoc_detector(blobs, generator):
    X, y = blobs
    posthoc = PostHocDetector(max_epochs=5, hidden_dims=(16,), device="cpu", random_state=0)
    posthoc.fit(X, y)
    det = DMRDetector(generator=generator, classifier=posthoc.net_.module_, standardize=True,
                      **{**TINY, "hidden_dims": (99,)}).fit(X, y)  # fmt: skip
    np.testing.assert_allclose(det.predict_class_proba(X), posthoc.predict_class_proba(X))
    assert len(det.classifier_history_) == 0


def test_feature_layer(blobs, generator):
    X, y = blobs
    det = DMRDetector(generator=generator, feature_layer="body.0", rejection_hidden=8,
                      **{**TINY, "hidden_dims": (16, 8)}).fit(X, y)  # fmt: skip
    # The first linear layer (16 units, before its ReLU) feeds B instead of the last 8.
    assert det.net_.module_.hidden.in_features == 16
    assert det.net_.module_.hidden.out_features == 8
    assert np.all(np.isfinite(det.score_samples(X)))
    with pytest.raises(ValueError, match="no submodule"):
        DMRDetector(generator=generator, feature_layer="nope", **TINY).fit(X, y)


def test_fewer_synthetic_outliers_are_weighted(blobs, generator):
    X, y = blobs
    det = DMRDetector(generator=generator, n_synthetic=40, **TINY).fit(X, y)
    assert det.net_.pos_weight == pytest.approx(10.0)
    assert np.all(np.isfinite(det.score_samples(X)))


@pytest.mark.parametrize(
    ("params", "match"),
    [({"emphasis": (3.0, 1.0)}, "low <= high"), ({"emphasis": (1.0,)}, "pair"),
     ({"augment_ood": True}, "input_shape"), ({"synthesis": "kirby"}, "synthesis"),
     ({"k": 0}, "k"), ({"generator": object()}, "generator")],
)  # fmt: skip
def test_bad_parameters(blobs, params, match):
    X, y = blobs
    with pytest.raises(ValueError, match=match):
        identity_dmr(**params).fit(X, y)


def test_bad_labels(blobs):
    X, y = blobs
    with pytest.raises(ValueError, match="requires y"):
        identity_dmr().fit(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        identity_dmr().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="Unknown label type"):
        identity_dmr().fit(X, np.linspace(0, 1, len(X)))


# --------------------------------------------------------------------------- persistence, seeds


# --------------------------------------------------------------------------- images
def test_augment_images():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, 2 * 6 * 6, generator=gen) * 2 - 1
    out = augment_images(images, torch.Generator().manual_seed(1), input_shape=(2, 6, 6),
                         low=-1.0, high=1.0)  # fmt: skip
    assert out.shape == images.shape
    assert out.min() >= -1.0 - 1e-6 and out.max() <= 1.0 + 1e-6
    assert not torch.allclose(out, images)
    again = augment_images(images, torch.Generator().manual_seed(1), input_shape=(2, 6, 6),
                           low=-1.0, high=1.0)  # fmt: skip
    torch.testing.assert_close(out, again, rtol=0, atol=0)
    # Autocontrast stretches some channels to the full range; inversion keeps the range.
    per_channel = out.reshape(64, 2, 36)
    full = (per_channel.amin(2) <= -1 + 1e-5) & (per_channel.amax(2) >= 1 - 1e-5)
    assert 0 < full.any(dim=1).sum() < 64


def test_images_with_augmented_outliers():
    rng = np.random.RandomState(0)
    y = rng.randint(2, size=64)
    images = rng.uniform(-1, 0, size=(64, 1, 8, 8)).astype(np.float32)
    images[y == 1, :, :, :4] += 1.0
    X = images.reshape(64, -1)
    gen = DLSGANDetector(input_shape=(1, 8, 8), latent_dim=4, max_epochs=1, device="cpu",
                         random_state=0)  # fmt: skip
    det = DMRDetector(generator=gen, input_shape=(1, 8, 8), **TINY).fit(X, y)
    assert det.net_.augment is not None and det.input_scale_.tolist() == [1.0] * 64
    assert det.synthesize(3, random_state=0).shape == (3, 64)
    assert np.all(np.isfinite(det.score_samples(X)))
