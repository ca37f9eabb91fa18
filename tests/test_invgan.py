"""InvGANDetector: the likelihood against direct computations, the metric, the RBF variance
network, parameter constraints, the latent API, images and the divergence message. The outlier
contract (for the residual score here), persistence, seeds, bad input and divergence are checked
for every detector by skood.utils.estimator_checks (tests/test_common.py)."""

import copy
import pickle

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.metrics import roc_auc_score
from torch.func import jacfwd, vmap

from skood import TrainingDivergedError
from skood.invgan import InvGANDetector, metric_log_det, minmax_anomaly_score
from skood.nn.rbf import RBFVariance, rbf_bandwidths

TINY = {
    "latent_dim": 2,
    "hidden_dims": (16,),
    "n_centres": 4,
    "n_kmeans_samples": 300,
    "max_epochs": 3,
    "device": "cpu",
    "random_state": 0,
}


# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def blobs():
    return np.random.RandomState(0).normal(size=(120, 5))


@pytest.fixture(scope="module")
def fitted(blobs):
    return InvGANDetector(**TINY).fit(blobs)


# ---------------------------------------------------------------------- likelihood
def _numpy_sigma_and_jacobian(rbf: RBFVariance, z: np.ndarray):
    """sigma(z) and its Jacobian from the formulas, in numpy (an independent computation)."""
    centres = rbf.centres.double().numpy()
    lam = rbf.bandwidths.double().numpy()
    w2 = rbf.weight.detach().double().numpy() ** 2
    diff = z[:, None, :] - centres[None]  # (n, K, d)
    v = np.exp(-lam * (diff**2).sum(-1))  # (n, K)
    beta = v @ w2.T + rbf.floor  # (n, D)
    jac = beta[..., None] ** -1.5 * np.einsum("ik,nk,nkj->nij", w2, lam * v, diff)
    return beta**-0.5, jac


@pytest.mark.parametrize("score_type", ["llk", "llk_residual"])
def test_log_likelihood_equals_direct_computation_for_linear_networks(blobs, score_type):
    det = InvGANDetector(**{**TINY, "standardize": False, "score_type": score_type}).fit(blobs)
    rng = np.random.RandomState(1)
    A, a = rng.normal(size=(5, 2)), rng.normal(size=5)  # g(z) = A z + a: J_g = A everywhere
    B, b = rng.normal(size=(2, 5)) * 0.3, rng.normal(size=2) * 0.1  # h(x) = B x + b
    generator, inference = torch.nn.Linear(2, 5), torch.nn.Linear(5, 2)
    with torch.no_grad():
        generator.weight.copy_(torch.as_tensor(A))
        generator.bias.copy_(torch.as_tensor(a))
        inference.weight.copy_(torch.as_tensor(B))
        inference.bias.copy_(torch.as_tensor(b))
    det.net_.module_, det.net_.inference_ = generator, inference
    # The float32 values the networks hold.
    A, a = generator.weight.detach().double().numpy(), generator.bias.detach().double().numpy()
    B, b = inference.weight.detach().double().numpy(), inference.bias.detach().double().numpy()

    X = blobs[:20]
    z = X @ B.T + b
    sigma, jac_sigma = _numpy_sigma_and_jacobian(det.net_.variance_, z)
    metric = A.T @ A + np.einsum("nid,nie->nde", jac_sigma, jac_sigma)
    expected = -0.5 * (z**2).sum(1) - np.log(2 * np.pi) - 0.5 * np.linalg.slogdet(metric)[1]
    if score_type == "llk_residual":
        mean = z @ A.T + a
        log_normal = -0.5 * ((X - mean) / sigma) ** 2 - np.log(sigma) - 0.5 * np.log(2 * np.pi)
        expected += log_normal.sum(1)
    np.testing.assert_allclose(det.score_samples(X), expected, rtol=1e-9, atol=1e-9)
    assert det.score(X) == pytest.approx(expected.mean(), rel=1e-9)


def test_metric_log_det_forward_reverse_and_per_sample_agree():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 7), torch.nn.Tanh(), torch.nn.Linear(7, 9))
    net = net.double()
    z = torch.randn(11, 3, dtype=torch.float64)
    with torch.no_grad():
        forward = metric_log_det(z, [net, torch.sin])
        reverse = metric_log_det(z, [net, torch.sin], mode="reverse", chunk_size=4)
    per_sample = []
    for row in z:
        jac = torch.cat(
            [torch.autograd.functional.jacobian(f, row) for f in (net, torch.sin)]
        )  # (9 + 3, 3)
        per_sample.append(torch.linalg.slogdet(jac.T @ jac)[1])
    np.testing.assert_allclose(forward.numpy(), torch.stack(per_sample).numpy(), rtol=1e-10)
    np.testing.assert_allclose(reverse.numpy(), forward.numpy(), rtol=1e-10)
    with pytest.raises(ValueError, match="forward"):
        metric_log_det(z, [net], mode="sideways")


def test_metric_is_positive_definite_and_sigma_jacobian_has_its_closed_form(fitted, blobs):
    networks = fitted._inference_networks()
    generator, variance = networks["module"], networks["variance"]
    codes = torch.as_tensor(fitted.transform(blobs))
    far = 6.0 * torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        for z in (codes, far):
            closed = variance.jacobian(z)
            automatic = vmap(jacfwd(lambda row: variance(row[None])[0]))(z)
            np.testing.assert_allclose(closed.numpy(), automatic.numpy(), rtol=1e-8, atol=1e-12)
            jac_g = vmap(jacfwd(lambda row: generator(row[None])[0]))(z)
            metric = jac_g.mT @ jac_g + closed.mT @ closed
            assert torch.all(torch.linalg.eigvalsh(metric) > 0)
            # The likelihood's log-determinant is this metric's.
            np.testing.assert_allclose(
                metric_log_det(z, [generator, variance]).numpy(),
                torch.linalg.slogdet(metric)[1].numpy(),
                rtol=1e-9,
            )


def test_sigma_grows_away_from_the_training_latents(blobs):
    det = InvGANDetector(**{**TINY, "max_epochs": 30}).fit(blobs)
    codes = det.transform(blobs)
    direction = codes / np.linalg.norm(codes, axis=1, keepdims=True)
    near = det.latent_std(codes)
    away = det.latent_std(codes + 6.0 * direction)
    far = det.latent_std(codes + 30.0 * direction)
    assert np.median(away) > 3 * np.median(near)
    # Beyond every kernel only the precision floor is left: sigma = floor ** -0.5.
    np.testing.assert_allclose(far, det.precision_floor**-0.5, rtol=1e-3)


def test_encoded_centres_cluster_the_training_codes_and_sigma_is_refitted(blobs):
    det = InvGANDetector(**{**TINY, "kmeans_on": "encoded", "max_epochs": 30}).fit(blobs)
    codes = det.transform(blobs)
    # K-means centres of the codes: each is the mean of the codes nearest to it.
    nearest = ((codes[:, None, :] - det.centres_[None]) ** 2).sum(-1).argmin(1)
    assert len(np.unique(nearest)) == det.n_centres_
    members = np.array([codes[nearest == k].mean(0) for k in range(det.n_centres_)])
    np.testing.assert_allclose(det.centres_, members, atol=1e-5)
    # W was fitted to the residuals at those codes: sigma matches their size in every
    # dimension, and the data term is better than with random weights.
    variance = det.net_.encoded_variance_
    standardized = torch.as_tensor((blobs - det.input_mean_) / det.input_scale_).float()
    with torch.no_grad():
        z = det.net_.inference_(standardized)
        squared = (standardized - det.net_.module_(z)).pow(2)
        ratio = (squared / variance(z).pow(2)).mean(0)
        assert torch.all((ratio > 0.4) & (ratio < 2.5)), ratio

        def data_loss() -> float:
            precision = variance.precision(z)
            return float((0.5 * squared * precision - 0.5 * precision.log()).sum(1).mean())

        fitted_loss = data_loss()
        draws = torch.Generator().manual_seed(0)
        for _ in range(5):
            variance.weight.copy_(torch.randn(variance.weight.shape, generator=draws))
            assert fitted_loss < data_loss()
    refit = InvGANDetector(**{**TINY, "kmeans_on": "encoded", "max_epochs": 30}).fit(blobs)
    # sigma is small at the training codes and large away from them.
    direction = codes / np.linalg.norm(codes, axis=1, keepdims=True)
    near = refit.latent_std(codes)
    assert np.median(refit.latent_std(codes + 6.0 * direction)) > 3 * np.median(near)
    scores = refit.score_samples(blobs)
    assert np.all(np.isfinite(scores))
    # Same seed, same refit (det's weights were overwritten above); the refitted variance
    # network survives pickling.
    again = InvGANDetector(**{**TINY, "kmeans_on": "encoded", "max_epochs": 30}).fit(blobs)
    np.testing.assert_array_equal(again.score_samples(blobs), scores)
    restored = pickle.loads(pickle.dumps(refit))
    np.testing.assert_array_equal(restored.score_samples(blobs), scores)
    np.testing.assert_array_equal(refit.predict(blobs), np.where(scores < refit.offset_, -1, 1))


def test_encoded_centres_need_a_row_per_centre(blobs):
    with pytest.raises(ValueError, match="kmeans_on='encoded'.*only 3 rows"):
        InvGANDetector(**{**TINY, "kmeans_on": "encoded"}).fit(blobs[:3])
    with pytest.raises(ValueError, match="kmeans_on"):
        InvGANDetector(**{**TINY, "kmeans_on": "data"}).fit(blobs)


def test_rbf_bandwidths_follow_the_mean_cluster_radius():
    points = torch.tensor([[0.0, 0.0], [2.0, 0.0], [10.0, 10.0], [10.0, 13.0], [10.0, 7.0]])
    centres = torch.tensor([[1.0, 0.0], [10.0, 10.0]])
    labels = torch.tensor([0, 0, 1, 1, 1])
    radius = torch.tensor([1.0, 2.0])  # mean distances to the centres
    for scale in (1.0, 2.5):
        expected = 0.5 / (scale * radius) ** 2
        torch.testing.assert_close(rbf_bandwidths(points, centres, labels, scale), expected)
    # A cluster with no spread takes the median radius of the others instead of infinity.
    single = rbf_bandwidths(points[:3], centres, torch.tensor([0, 0, 1]))
    torch.testing.assert_close(single, torch.tensor([0.5, 0.5]))


def test_rbf_sigma_is_positive_and_bounded_by_the_floor():
    gen = torch.Generator().manual_seed(0)
    rbf = RBFVariance(torch.randn(5, 3, generator=gen), torch.ones(5), 4, floor=1e-4)
    z = torch.cat([torch.randn(20, 3, generator=gen), torch.full((1, 3), 1e3)])
    sigma = rbf(z)
    assert torch.all(sigma > 0) and torch.all(sigma <= 1e-4**-0.5 * (1 + 1e-6))
    torch.testing.assert_close(rbf.log_sigma(z), sigma.log())
    with pytest.raises(ValueError, match="bandwidths"):
        RBFVariance(torch.zeros(2, 3), torch.tensor([1.0, 0.0]), 4)


# ---------------------------------------------------------------------- constraints
@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"latent_dim": 3, "n_centres": 3}, "latent_dim \\+ 1"),
        ({"latent_dim": 6, "n_centres": 10}, "5 feature\\(s\\)"),
        ({"n_centres": 400}, "n_kmeans_samples"),
        ({"input_shape": (1, 2, 3)}, "input_shape"),
        ({"hidden_dims": (0,)}, "hidden_dims"),
        ({"betas": (0.5,)}, "betas"),
        ({"score_type": "mse"}, "score_type"),
        ({"bandwidth": 0.0}, "bandwidth"),
    ],
)
def test_bad_parameters_raise_clear_errors(blobs, params, match):
    with pytest.raises(ValueError, match=match):
        InvGANDetector(**{**TINY, **params}).fit(blobs)


def test_auto_sizes_follow_the_paper(blobs):
    det = InvGANDetector(**{**TINY, "latent_dim": "auto", "n_centres": "auto"}).fit(blobs)
    # min(50, n_features) latents; max(2 d, 64) centres
    assert det.latent_dim_ == 5 and det.n_centres_ == 64
    assert det.centres_.shape == (64, 5) and np.all(det.bandwidths_ > 0)


# ---------------------------------------------------------------------- contract
@pytest.mark.parametrize("score_type", ["llk", "llk_residual"])
def test_score_is_the_mean_score_and_the_history_has_every_loss(blobs, score_type):
    det = InvGANDetector(**{**TINY, "score_type": score_type}).fit(blobs)
    scores = det.score_samples(blobs)
    assert det.score(blobs) == pytest.approx(scores.mean())
    assert set(det.history_[-1]) >= {"train_loss", "generator_loss", "inference_loss", "kl"}


def test_contract_with_the_residual_score(blobs):
    # score_type="llk" (the default): the common checks (tests/test_common.py).
    det = InvGANDetector(**{**TINY, "score_type": "llk_residual"}).fit(blobs)
    scores = det.score_samples(blobs)
    assert scores.dtype == np.float64 and scores.shape == (len(blobs),)
    assert np.all(np.isfinite(scores))
    np.testing.assert_array_equal(det.decision_function(blobs), scores - det.offset_)
    np.testing.assert_array_equal(det.predict(blobs), np.where(scores < det.offset_, -1, 1))
    refit = InvGANDetector(**{**TINY, "score_type": "llk_residual"})
    np.testing.assert_array_equal(refit.fit_predict(blobs), det.predict(blobs))


@pytest.mark.parametrize("score_type", ["llk", "llk_residual"])
def test_separates_an_outlier_cluster(score_type):
    rng = np.random.RandomState(1)
    train = rng.normal(size=(300, 6))
    test = np.vstack([rng.normal(size=(150, 6)), rng.normal(loc=5.0, size=(40, 6))])
    is_inlier = np.r_[np.ones(150), np.zeros(40)]
    det = InvGANDetector(
        latent_dim=3, hidden_dims=(32, 16), n_centres=8, n_kmeans_samples=1000, max_epochs=20,
        score_type=score_type, device="cpu", random_state=0,
    ).fit(train)  # fmt: skip
    assert roc_auc_score(is_inlier, det.score_samples(test)) > 0.95


def test_a_row_scores_the_same_in_any_batch(fitted, blobs):
    # BatchNorm uses its running statistics when scoring, so rows are independent.
    alone = np.concatenate([fitted.score_samples(blobs[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(alone, fitted.score_samples(blobs)[:5], rtol=1e-12)


def test_inference_running_statistics_describe_real_rows():
    # h scores real rows with its running BatchNorm statistics; the generated batches of the
    # cycle step must not leak into them. Learning rates ~0 keep the weights fixed, so the
    # running mean of h's first BatchNorm must be the mean of its input over the real rows.
    X = np.random.RandomState(0).normal(loc=5.0, size=(64, 6))
    det = InvGANDetector(
        latent_dim=2,
        hidden_dims=(8, 4),
        n_kmeans_samples=200,
        max_epochs=30,
        lr=1e-12,
        lr_inference=1e-12,
        standardize=False,
        random_state=0,
    ).fit(X)
    linear, norm = det.net_.inference_[0], det.net_.inference_[1]
    with torch.no_grad():
        real = linear(torch.as_tensor(X, dtype=torch.float32)).mean(0)
        fake = linear(det.net_.module_(torch.randn(512, 2))).mean(0)
    gap = float((real - fake).norm())
    assert gap > 1.0  # generated and real rows differ, so the test can tell them apart
    assert float((norm.running_mean - real).norm()) < 0.05 * gap


def test_last_batch_of_one_row_is_merged(blobs):
    det = InvGANDetector(**{**TINY, "batch_size": 16}).fit(blobs[:33])  # 16 + 16 + 1 rows
    assert len(det.history_[-1, "batches"]) == 2
    assert np.all(np.isfinite(det.score_samples(blobs)))


def test_latent_space_methods(fitted, blobs):
    assert fitted.transform(blobs).shape == (len(blobs), 2)
    assert list(fitted.get_feature_names_out()) == ["invgandetector0", "invgandetector1"]
    means = fitted.sample(7, noise=False, random_state=3)
    latents = np.random.RandomState(3).standard_normal((7, 2))
    np.testing.assert_allclose(means, fitted.inverse_transform(latents))
    noisy = fitted.sample(7, random_state=3)
    assert noisy.shape == (7, 5) and not np.allclose(noisy, means)
    with pytest.raises(ValueError, match="latent coordinates"):
        fitted.inverse_transform(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="positive integer"):
        fitted.sample(0)


@pytest.mark.parametrize("kmeans_on", ["prior", "encoded"])
def test_latent_space_methods_equal_the_networks(blobs, kmeans_on):
    """transform is h(x), inverse_transform g(z) and latent_std sigma(z) of the scoring sigma
    (the refitted one with kmeans_on="encoded"); sample(n, random_state=r) is
    g(z) + sigma(z) * eps in original units, z then eps drawn from RandomState(r)."""
    X = 3.0 + blobs * np.array([1.0, 2.0, 5.0, 0.5, 10.0])
    det = InvGANDetector(**{**TINY, "kmeans_on": kmeans_on}).fit(X)
    generator = copy.deepcopy(det.net_.module_).double().eval()
    inference = copy.deepcopy(det.net_.inference_).double().eval()
    scoring = det.net_.encoded_variance_ if kmeans_on == "encoded" else det.net_.variance_
    if kmeans_on == "encoded":  # the refitted sigma differs from the trained one
        z = torch.zeros(1, 2)
        assert not torch.allclose(scoring(z), det.net_.variance_(z))

    def mean_and_std(latents):
        with torch.no_grad():
            mean = generator(torch.as_tensor(latents)).numpy()
        return mean, _numpy_sigma_and_jacobian(scoring, latents)[0]

    with torch.no_grad():
        codes = inference(torch.as_tensor((X - det.input_mean_) / det.input_scale_)).numpy()
    np.testing.assert_allclose(det.transform(X), codes, rtol=1e-10, atol=1e-12)
    latents = np.random.RandomState(1).normal(size=(6, 2))
    mean, std = mean_and_std(latents)
    in_units = mean * det.input_scale_ + det.input_mean_
    np.testing.assert_allclose(det.inverse_transform(latents), in_units, rtol=1e-10)
    np.testing.assert_allclose(det.latent_std(latents), std, rtol=1e-10)
    rng = np.random.RandomState(5)
    draws = rng.standard_normal((7, 2))
    mean, std = mean_and_std(draws)
    noisy = mean + std * rng.standard_normal((7, 5))
    np.testing.assert_allclose(
        det.sample(7, random_state=5), noisy * det.input_scale_ + det.input_mean_, rtol=1e-10
    )
    np.testing.assert_allclose(
        det.sample(7, noise=False, random_state=5),
        mean * det.input_scale_ + det.input_mean_,
        rtol=1e-10,
    )


# ---------------------------------------------------------------------- bad input, divergence


def test_extreme_inputs_score_finite(fitted):
    extreme = np.array([[1e30] * 5, [-1e300] * 5, [np.finfo(float).max] * 5])
    assert np.all(np.isfinite(fitted.score_samples(extreme)))


def test_divergence_raises_and_leaves_the_detector_unfitted(blobs):
    det = InvGANDetector(**{**TINY, "lr": 1e8, "lr_inference": 1e8})
    with pytest.raises(TrainingDivergedError, match="lr_inference"):
        det.fit(blobs)
    assert not hasattr(det, "net_")


# ---------------------------------------------------------------------- images
def test_tiny_image_fit():
    rng = np.random.RandomState(0)
    # Inliers: a bright square on a dark background, jittered; outliers: uniform noise.
    images = np.full((64, 1, 8, 8), -1.0)
    images[:, :, 2:6, 2:6] = 0.8
    images += 0.1 * rng.normal(size=images.shape)
    X = np.clip(images, -1, 1).reshape(64, -1)
    noise = rng.uniform(-1, 1, size=(16, 64))
    det = InvGANDetector(
        input_shape=(1, 8, 8), latent_dim=3, n_centres=6, n_kmeans_samples=300, max_epochs=5,
        device="cpu", random_state=0,
    ).fit(X)  # fmt: skip
    assert det.latent_dim_ == 3 and det.input_mean_.max() == 0.0  # images are not standardized
    scores = det.score_samples(np.vstack([X[:16], noise]))
    assert scores.shape == (32,) and np.all(np.isfinite(scores))
    assert det.sample(2, random_state=0).shape == (2, 64)
    with pytest.raises(ValueError, match="divisible by 8"):
        InvGANDetector(input_shape=(1, 4, 16), latent_dim=2, n_centres=3).fit(X)


# ---------------------------------------------------------------------- min-max helper
def test_minmax_anomaly_score_reverses_and_normalises():
    np.testing.assert_allclose(minmax_anomaly_score([-10.0, -20.0, -15.0]), [0.0, 1.0, 0.5])
    np.testing.assert_array_equal(minmax_anomaly_score([3.0, 3.0]), [0.0, 0.0])
    with pytest.raises(ValueError, match="one-dimensional"):
        minmax_anomaly_score([[1.0, 2.0]])
    with pytest.raises(ValueError, match="NaN"):
        minmax_anomaly_score([1.0, np.nan])


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.integers(2, 30), elements=st.floats(-1e6, 1e6)))
def test_minmax_anomaly_score_properties(scores):
    normalised = minmax_anomaly_score(scores)
    assert np.all((normalised >= 0) & (normalised <= 1))
    if scores.max() > scores.min():
        assert normalised[np.argmax(scores)] == 0 and normalised[np.argmin(scores)] == 1
        # Higher likelihood, lower anomaly score: the order is reversed.
        order = np.argsort(scores, kind="stable")
        assert np.all(np.diff(normalised[order]) <= 1e-12)
