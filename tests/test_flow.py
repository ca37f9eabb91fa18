"""ApproximateMassFlowDetector and the RealNVP flows: exact densities, inverses, the batched
input-gradient norms, the penalty's meaning, the scores against direct computations, sampling,
images. The outlier contract, persistence (CUDA to CPU too), seeds, bad input and divergence are
checked for every detector by skood.utils.estimator_checks (tests/test_common.py)."""

import copy
import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy import stats
from sklearn.base import clone
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GridSearchCV, KFold

from skood.flow import ApproximateMassFlowDetector, log_prob_and_gradient_norm
from skood.nn.realnvp import (
    DequantizeLogit,
    RealNVPImage,
    RealNVPTabular,
    squeeze2x2,
    unsqueeze2x2,
)

TINY = {
    "n_couplings": 2,
    "hidden_dims": (16,),
    "max_epochs": 3,
    "batch_size": 50,
    "device": "cpu",
    "random_state": 0,
}
TINY_IMAGE = {
    "input_shape": (1, 8, 8),
    "n_blocks": 1,
    "mid_channels": 4,
    "max_epochs": 1,
    "batch_size": 16,
    "device": "cpu",
    "random_state": 0,
}


# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def blobs():
    return np.random.RandomState(0).normal(size=(200, 5))


@pytest.fixture(scope="module")
def fitted(blobs):
    return ApproximateMassFlowDetector(score_type="approximate_mass", **TINY).fit(blobs)


def _perturbed(flow, seed=0, size=0.3):
    """A flow with every parameter moved off its (identity) initialisation, in float64."""
    flow = flow.double()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in flow.parameters():
            noise = torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            parameter.add_(size * noise)
    return flow


def _float64_flow(detector):
    return copy.deepcopy(detector.net_.module_).double().eval()


# ----------------------------------------------------------------------------- the flows
def test_new_tabular_flow_is_a_standard_normal():
    flow = RealNVPTabular(4, n_couplings=3, hidden_dims=(8, 8)).double()
    x = torch.randn(10, 4, dtype=torch.float64)
    expected = stats.norm.logpdf(x.numpy()).sum(axis=1)
    np.testing.assert_allclose(flow.log_prob(x).detach().numpy(), expected, rtol=1e-12)
    z, log_det = flow(x)
    np.testing.assert_array_equal(z.detach().numpy(), x.numpy())
    np.testing.assert_array_equal(log_det.detach().numpy(), 0.0)


def test_new_image_flow_is_the_logit_preprocessing_of_a_standard_normal():
    # With zeroed couplings only the dequantisation + logit map remains; squeezes permute.
    flow = RealNVPImage((1, 4, 4), n_scales=2, n_blocks=1, mid_channels=4).double()
    pixels = np.random.RandomState(0).randint(0, 256, size=(3, 16)) / 255.0
    noise = np.random.RandomState(1).uniform(size=(3, 16))
    y = 0.05 + 0.9 * (255 * pixels + noise) / 256
    logits = np.log(y / (1 - y))
    log_det = (np.log(0.9) + np.log(255 / 256) - np.log(y) - np.log(1 - y)).sum(axis=1)
    expected = stats.norm.logpdf(logits).sum(axis=1) + log_det
    as_tensor = torch.from_numpy
    actual = flow.log_prob(as_tensor(pixels), noise=as_tensor(noise)).detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-12)


def test_tabular_log_det_equals_the_jacobian_log_determinant():
    flow = _perturbed(RealNVPTabular(5, n_couplings=4, hidden_dims=(8, 8)))
    x = torch.randn(6, 5, dtype=torch.float64)
    _, log_det = flow(x)
    jacobian = torch.func.vmap(torch.func.jacrev(lambda row: flow(row[None])[0][0]))(x)
    _, logabsdet = torch.linalg.slogdet(jacobian)
    np.testing.assert_allclose(log_det.detach().numpy(), logabsdet.detach().numpy(), atol=1e-10)
    assert log_det.detach().abs().max() > 0.1  # the perturbation made the flow non-trivial


@pytest.mark.parametrize("n_scales", [1, 2, 3])
def test_image_log_det_equals_the_jacobian_log_determinant(n_scales):
    flow = _perturbed(RealNVPImage((2, 8, 8), n_scales=n_scales, n_blocks=1, mid_channels=4))
    x = torch.rand(2, 2, 8, 8, dtype=torch.float64)
    noise = torch.rand(2, 2, 8, 8, dtype=torch.float64)
    _, log_det = flow(x, noise)

    def transform(pixels, u):
        return flow(pixels[None], u[None])[0][0]

    jacobian = torch.func.vmap(torch.func.jacrev(transform))(x, noise).reshape(2, 128, 128)
    _, logabsdet = torch.linalg.slogdet(jacobian)
    np.testing.assert_allclose(log_det.detach().numpy(), logabsdet.detach().numpy(), rtol=1e-10)


def test_inverse_inverts_forward():
    tabular = _perturbed(RealNVPTabular(7, n_couplings=5, hidden_dims=(8,)))
    x = 3 * torch.randn(20, 7, dtype=torch.float64)
    np.testing.assert_allclose(tabular.inverse(tabular(x)[0]).detach(), x, atol=1e-10)
    for n_scales in (1, 2, 3):
        flow = _perturbed(RealNVPImage((3, 8, 8), n_scales=n_scales, n_blocks=1, mid_channels=4))
        pixels = torch.rand(4, 3, 8, 8, dtype=torch.float64)
        z, _ = flow(pixels)  # midpoint noise, which the inverse assumes
        assert z.shape == (4, 3 * 8 * 8)
        np.testing.assert_allclose(flow.inverse(z).detach(), pixels, atol=1e-10)
    images = torch.rand(2, 3, 6, 4)
    assert squeeze2x2(images).shape == (2, 12, 3, 2)
    np.testing.assert_array_equal(unsqueeze2x2(squeeze2x2(images)), images)


def test_dequantize_logit_inverse_and_bad_constraint():
    layer = DequantizeLogit()
    pixels = torch.linspace(0, 1, 11, dtype=torch.float64)[None]
    np.testing.assert_allclose(layer.inverse(layer(pixels)[0]), pixels, atol=1e-12)
    with pytest.raises(ValueError, match="constraint"):
        DequantizeLogit(constraint=1.0)


def test_bad_flow_shapes_are_clear_errors():
    with pytest.raises(ValueError, match="at least 2 features"):
        RealNVPTabular(1)
    with pytest.raises(ValueError, match="divisible"):
        RealNVPImage((1, 28, 28), n_scales=4)
    with pytest.raises(ValueError, match="channels, height, width"):
        RealNVPImage((28, 28))


# ----------------------------------------------------------------------------- gradient norms
@pytest.mark.parametrize("kind", ["tabular", "image"])
def test_batched_gradient_norms_equal_a_per_sample_loop(kind):
    if kind == "tabular":
        flow = _perturbed(RealNVPTabular(4, n_couplings=3, hidden_dims=(8,)))
        x = torch.randn(5, 4, dtype=torch.float64)
    else:
        flow = _perturbed(RealNVPImage((1, 4, 4), n_blocks=1, mid_channels=4), size=0.1)
        x = torch.rand(5, 16, dtype=torch.float64)
    looped = []
    for row in x:
        row = row[None].clone().requires_grad_(True)
        (gradient,) = torch.autograd.grad(flow.log_prob(row).sum(), row)
        looped.append(gradient.norm().item())
    log_likelihood, norms = log_prob_and_gradient_norm(flow.log_prob, x)
    np.testing.assert_allclose(norms.numpy(), looped, rtol=1e-12)
    np.testing.assert_allclose(log_likelihood.detach(), flow.log_prob(x).detach(), rtol=1e-12)
    # The paper's batch-mean objective: each per-sample gradient carries a factor 1 / B.
    _, mean_norms = log_prob_and_gradient_norm(flow.log_prob, x, reduction="mean")
    np.testing.assert_allclose(mean_norms.numpy(), np.array(looped) / len(x), rtol=1e-12)
    with pytest.raises(ValueError, match="reduction"):
        log_prob_and_gradient_norm(flow.log_prob, x, reduction="max")


def test_penalty_gradient_goes_through_the_input_gradient():
    # d/d(theta) of the penalty by double backprop equals a finite difference of it.
    flow = _perturbed(RealNVPTabular(3, n_couplings=2, hidden_dims=(6,)))
    x = torch.randn(4, 3, dtype=torch.float64)
    parameter = flow.couplings[0].network[0].weight

    def penalty():
        _, norms = log_prob_and_gradient_norm(flow.log_prob, x, create_graph=True)
        return norms.mean()

    (analytic,) = torch.autograd.grad(penalty(), parameter)
    step = 1e-6
    numeric = []
    for row in range(parameter.shape[0]):  # column 0: the feature the first mask passes on
        parameter.data[row, 0] += step
        upper = penalty().item()
        parameter.data[row, 0] -= 2 * step
        lower = penalty().item()
        parameter.data[row, 0] += step
        numeric.append((upper - lower) / (2 * step))
    np.testing.assert_allclose(analytic[:, 0].numpy(), numeric, rtol=1e-5, atol=1e-9)
    assert np.abs(numeric).max() > 1e-3


# ----------------------------------------------------------------------------- the detector


def test_offset_belongs_to_the_fitted_score_type(fitted, blobs):
    det = copy.deepcopy(fitted).set_params(score_type="log_likelihood")
    assert np.all(np.isfinite(det.score_samples(blobs)))  # scoring needs no refit
    for method in (det.decision_function, det.predict):
        with pytest.raises(ValueError, match="offset_ was set for score_type='approximate_mass'"):
            method(blobs)
    det.set_params(score_type="approximate_mass")
    np.testing.assert_array_equal(det.predict(blobs), fitted.predict(blobs))
    # A refit thresholds the new score.
    refit = det.set_params(score_type="log_likelihood").fit(blobs)
    assert np.mean(refit.predict(blobs) == -1) == pytest.approx(0.1, abs=0.01)


def test_auto_scores_tables_by_log_likelihood_and_images_by_approximate_mass(fitted, blobs, images):
    auto = ApproximateMassFlowDetector(**TINY).fit(blobs)
    assert auto.score_type == "auto"
    likelihood = clone(auto).set_params(score_type="log_likelihood").fit(blobs)
    np.testing.assert_array_equal(auto.score_samples(blobs), likelihood.score_samples(blobs))
    assert auto.offset_ == likelihood.offset_
    assert not np.allclose(auto.score_samples(blobs), fitted.score_samples(blobs))
    image_auto = ApproximateMassFlowDetector(**TINY_IMAGE).fit(images)
    image_mass = clone(image_auto).set_params(score_type="approximate_mass").fit(images)
    np.testing.assert_array_equal(
        image_auto.score_samples(images), image_mass.score_samples(images)
    )


def test_approximate_mass_is_the_input_gradient_norm(fitted, blobs):
    flow = _float64_flow(fitted)
    standardized = torch.from_numpy((blobs - fitted.input_mean_) / fitted.input_scale_)
    x = standardized.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(flow.log_prob(x).sum(), x)
    expected = -np.linalg.norm(gradient.numpy(), axis=1)
    np.testing.assert_allclose(fitted.score_samples(blobs), expected, rtol=1e-10)


def test_score_is_the_mean_log_likelihood_in_the_units_of_x(blobs):
    X = 3.0 + 10.0 * blobs
    det = ApproximateMassFlowDetector(score_type="log_likelihood", **TINY).fit(X)
    flow = _float64_flow(det)
    standardized = torch.from_numpy((X - det.input_mean_) / det.input_scale_)
    expected = flow.log_prob(standardized).detach().numpy() - np.log(det.input_scale_).sum()
    np.testing.assert_allclose(det.score_samples(X), expected, rtol=1e-10)
    assert det.score(X) == pytest.approx(expected.mean(), rel=1e-12)
    # The same flow fitted on the unscaled data: densities differ by the Jacobian of x -> 10x.
    plain = ApproximateMassFlowDetector(score_type="log_likelihood", **TINY).fit(blobs)
    np.testing.assert_allclose(
        det.score_samples(X), plain.score_samples(blobs) - 5 * np.log(10.0), rtol=1e-6
    )
    # score ignores score_type: it is always the mean log-likelihood.
    det.set_params(score_type="approximate_mass")
    assert det.score(X) == pytest.approx(expected.mean(), rel=1e-12)


def test_flow_learns_a_correlated_gaussian():
    # Trained on N(0, S), the mean log-likelihood on fresh data approaches -entropy(N(0, S)).
    rng = np.random.RandomState(0)
    cov = np.array([[1.0, 0.8], [0.8, 1.0]])
    X = rng.multivariate_normal([0, 0], cov, size=2000)
    fresh = rng.multivariate_normal([0, 0], cov, size=2000)
    det = ApproximateMassFlowDetector(
        n_couplings=4, hidden_dims=(16,), max_epochs=15, batch_size=100, alpha=0.0,
        device="cpu", random_state=0,
    ).fit(X)  # fmt: skip
    truth = stats.multivariate_normal([0, 0], cov).logpdf(fresh).mean()
    independent = stats.norm.logpdf(fresh).sum(axis=1).mean()  # ignores the correlation
    assert abs(det.score(fresh) - truth) < 0.05
    assert det.score(fresh) > independent + 0.3


@pytest.mark.parametrize("score_type", ["approximate_mass", "log_likelihood"])
def test_separates_an_outlier_cluster(score_type):
    rng = np.random.RandomState(1)
    train = rng.normal(size=(300, 6))
    test = np.vstack([rng.normal(size=(200, 6)), rng.normal(loc=6.0, size=(50, 6))])
    is_inlier = np.r_[np.ones(200), np.zeros(50)]
    det = ApproximateMassFlowDetector(
        **{**TINY, "max_epochs": 10, "hidden_dims": (32,)}, score_type=score_type
    ).fit(train)
    assert roc_auc_score(is_inlier, det.score_samples(test)) > 0.95


def test_penalised_and_vanilla_flows_differ(blobs):
    penalised = ApproximateMassFlowDetector(**TINY).fit(blobs)
    vanilla = ApproximateMassFlowDetector(**{**TINY, "alpha": 0.0}).fit(blobs)
    assert not np.allclose(penalised.score_samples(blobs), vanilla.score_samples(blobs))
    for key in ("train_loss", "nll", "penalty", "gradient_norm"):
        assert np.all(np.isfinite(penalised.history_[:, key]))
    assert "penalty" not in vanilla.history_[-1]
    np.testing.assert_allclose(vanilla.history_[:, "train_loss"], vanilla.history_[:, "nll"])
    # train_loss = nll + alpha * penalty, batch by batch.
    batch = penalised.history_[-1, "batches", -1]
    assert batch["train_loss"] == pytest.approx(batch["nll"] + 2.0 * batch["penalty"], rel=1e-5)
    # With the batch-mean penalty, the recorded per-sample norm is B times the penalty.
    assert batch["gradient_norm"] == pytest.approx(TINY["batch_size"] * batch["penalty"])


def test_batch_mean_penalty_is_the_per_sample_penalty_with_alpha_over_b(blobs):
    # 200 rows in batches of 50: every batch is full, so alpha=2 (batch mean) is exactly
    # alpha=2/50 on the per-sample norms.
    batch_mean = ApproximateMassFlowDetector(**TINY).fit(blobs)
    per_sample = ApproximateMassFlowDetector(
        **TINY, penalty="per_sample", alpha=2.0 / TINY["batch_size"]
    ).fit(blobs)
    np.testing.assert_allclose(
        per_sample.score_samples(blobs), batch_mean.score_samples(blobs), rtol=1e-4
    )
    stronger = ApproximateMassFlowDetector(**TINY, penalty="per_sample").fit(blobs)
    assert not np.allclose(stronger.score_samples(blobs), batch_mean.score_samples(blobs))


def test_penalty_lowers_the_training_gradient_norm():
    rng = np.random.RandomState(0)
    X = rng.standard_t(3, size=(400, 4))
    params = {**TINY, "max_epochs": 8, "hidden_dims": (32,), "penalty": "per_sample"}
    params["score_type"] = "approximate_mass"
    vanilla = ApproximateMassFlowDetector(**{**params, "alpha": 0.0}).fit(X)
    penalised = ApproximateMassFlowDetector(**{**params, "alpha": 1.0}).fit(X)
    assert np.mean(-penalised.score_samples(X)) < np.mean(-vanilla.score_samples(X))


def test_image_fit_leaves_global_torch_random_state_alone(images):
    # Tables: check_global_random_state (tests/test_common.py); images draw dequantisation
    # noise too.
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    ApproximateMassFlowDetector(**TINY_IMAGE).fit(images)
    np.testing.assert_array_equal(torch.rand(3), expected)


def test_samples_are_in_the_units_of_x():
    rng = np.random.RandomState(0)
    X = 100.0 + 10.0 * rng.normal(size=(400, 3))
    det = ApproximateMassFlowDetector(**{**TINY, "max_epochs": 5}).fit(X)
    samples = det.sample(500, random_state=0)
    assert samples.shape == (500, 3)
    np.testing.assert_allclose(samples.mean(axis=0), 100.0, atol=3.0)
    np.testing.assert_allclose(samples.std(axis=0), 10.0, rtol=0.3)
    np.testing.assert_array_equal(det.sample(2, random_state=5), det.sample(2, random_state=5))
    with pytest.raises(ValueError, match="n_samples"):
        det.sample(0)


def test_sample_is_the_inverse_flow_of_the_documented_draws(blobs):
    """sample(n, random_state=r) is inverse(z) in the units of X for
    z = RandomState(r).standard_normal((n, n_features))."""
    X = 3.0 + blobs * np.array([1.0, 2.0, 5.0, 0.5, 10.0])
    det = ApproximateMassFlowDetector(**TINY).fit(X)
    flow = _float64_flow(det)
    z = np.random.RandomState(4).standard_normal((6, 5))
    with torch.no_grad():
        inverted = flow.inverse(torch.from_numpy(z)).numpy()
    expected = inverted * det.input_scale_ + det.input_mean_
    np.testing.assert_allclose(det.sample(6, random_state=4), expected, rtol=1e-10)


def test_extreme_finite_inputs_score_finite(fitted):
    extreme = np.array([[1e30] * 5, [-1e300] * 5, [1e-300] * 5, [np.finfo(float).max] * 5])
    for score_type in ("approximate_mass", "log_likelihood"):
        det = clone(fitted).set_params(score_type=score_type)
        det.__dict__.update({k: v for k, v in vars(fitted).items() if k.endswith("_")})
        assert np.all(np.isfinite(det.score_samples(extreme)))
    assert np.isfinite(fitted.score(extreme))


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=arrays(
        np.float64,
        st.tuples(st.integers(1, 6), st.just(5)),
        elements=st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
    )
)
def test_any_finite_rows_score_finite_and_alike_alone_or_together(fitted, rows):
    scores = fitted.score_samples(rows)
    assert np.all(np.isfinite(scores))
    np.testing.assert_allclose(fitted.score_samples(rows[:1]), scores[:1], rtol=1e-9)


def test_one_feature_is_a_clear_value_error(blobs):
    # The other bad inputs: check_bad_input_at_fit (tests/test_common.py).
    with pytest.raises(ValueError, match=r"at least 2 features.*1 feature\(s\)"):
        ApproximateMassFlowDetector(**TINY).fit(blobs[:, :1])


@pytest.mark.parametrize(
    ("params", "match"),
    [({"alpha": -1.0}, "'alpha' parameter"), ({"score_type": "nll"}, "'score_type' parameter"),
     ({"penalty": "sum"}, "'penalty' parameter"), ({"n_couplings": 0}, "'n_couplings' parameter"),
     ({"hidden_dims": (0,)}, "'hidden_dims' parameter .* must be a non-empty tuple"),
     ({"max_grad_norm": 0.0}, "'max_grad_norm' parameter"),
     ({"device": "gpu7"}, "device='gpu7' is not understood"),
     ({"contamination": 0.7}, "'contamination' parameter")],
    ids=str,
)  # fmt: skip
def test_bad_parameters_raise_at_fit(blobs, params, match):
    """Each bad parameter is a ValueError that names it."""
    with pytest.raises(ValueError, match=match):
        ApproximateMassFlowDetector(**{**TINY, **params}).fit(blobs)


def test_grid_search_tunes_on_held_out_log_likelihood_without_labels():
    X = np.random.RandomState(0).normal(size=(240, 3)) @ np.array(
        [[1, 0.9, 0], [0, 1, 0], [0, 0, 1]]
    )
    search = GridSearchCV(
        ApproximateMassFlowDetector(**{**TINY, "alpha": 0.0}),
        {"max_epochs": [1, 12]},
        cv=KFold(3, shuffle=True, random_state=0),
    ).fit(X)
    assert search.best_params_ == {"max_epochs": 12}  # more training, higher held-out density
    assert np.isfinite(search.best_score_)


def test_history_and_verbose_output(fitted, capsys):
    assert len(fitted.history_) == TINY["max_epochs"]
    capsys.readouterr()
    ApproximateMassFlowDetector(**{**TINY, "verbose": 1}).fit(
        np.random.RandomState(0).normal(size=(60, 3))
    )
    printed = capsys.readouterr().out
    assert "gradient_norm" in printed and "nll" in printed
    ApproximateMassFlowDetector(**TINY).fit(np.random.RandomState(0).normal(size=(60, 3)))
    assert capsys.readouterr().out == ""


# ----------------------------------------------------------------------------- images
def test_image_flow_trains_scores_and_samples(images):
    det = ApproximateMassFlowDetector(**TINY_IMAGE).fit(images)
    assert isinstance(det.net_.module_, RealNVPImage)
    assert det.input_scale_.tolist() == [1.0] * 64  # images are not standardized
    for score_type in ("approximate_mass", "log_likelihood"):
        det.set_params(score_type=score_type)
        assert np.all(np.isfinite(det.score_samples(images)))
    samples = det.sample(3, random_state=0)
    assert samples.shape == (3, 64)
    assert samples.min() >= -1.0 and samples.max() <= 1.0


def test_image_sample_is_the_inverse_flow_mapped_to_the_pixel_range(images):
    """Image samples: low + (high - low) * clip(inverse(z), 0, 1), with z drawn as for tables."""
    det = ApproximateMassFlowDetector(**TINY_IMAGE, pixel_range=(-2.0, 4.0)).fit(3 * images + 1)
    z = torch.from_numpy(np.random.RandomState(2).standard_normal((3, 64)))
    with torch.no_grad():
        inverted = det.net_.module_.inverse(z.float()).flatten(1).double().numpy()
    expected = -2.0 + 6.0 * np.clip(inverted, 0.0, 1.0)
    np.testing.assert_allclose(det.sample(3, random_state=2), expected, rtol=1e-6, atol=1e-6)


def test_dequantization_draws_average_the_scores_over_fixed_noise(images):
    det = ApproximateMassFlowDetector(
        **TINY_IMAGE, score_type="log_likelihood", n_dequantization_draws=3
    ).fit(images)
    flow = _float64_flow(det)
    pixels = torch.from_numpy((images.astype(np.float64) + 1.0) / 2.0).requires_grad_(True)
    stream = torch.Generator().manual_seed(det.dequantization_seed_)
    noises = torch.rand((3, 64), generator=stream).double()
    log_likelihoods, norms = [], []
    for noise in noises:
        log_likelihood = flow.log_prob(pixels, noise=noise.expand_as(pixels))
        (gradient,) = torch.autograd.grad(log_likelihood.sum(), pixels)
        log_likelihoods.append(log_likelihood.detach().numpy())
        norms.append(gradient.norm(dim=1).numpy())
    expected = np.mean(log_likelihoods, axis=0) - 64 * math.log(2.0)
    np.testing.assert_allclose(det.score_samples(images), expected, rtol=1e-5)
    assert det.score(images) == pytest.approx(expected.mean(), rel=1e-5)
    det.set_params(score_type="approximate_mass")
    mass = det.score_samples(images)
    np.testing.assert_allclose(mass, -np.mean(norms, axis=0), rtol=1e-4)
    # The same noise for every row: a row's score does not depend on its batch.
    np.testing.assert_allclose(det.score_samples(images[5:9]), mass[5:9], rtol=1e-6)
    midpoint = clone(det).set_params(n_dequantization_draws=0).fit(images)
    assert not np.allclose(midpoint.score_samples(images), mass)
    # offset_ belongs to the fit-time draws.
    det.set_params(score_type="log_likelihood", n_dequantization_draws=1)
    with pytest.raises(ValueError, match="n_dequantization_draws=3"):
        det.predict(images)


def test_dequantization_draws_are_for_images_only(blobs):
    with pytest.raises(ValueError, match="n_dequantization_draws applies to images"):
        ApproximateMassFlowDetector(**TINY, n_dequantization_draws=2).fit(blobs)


def test_image_units_pixel_range_only_shifts_the_log_likelihood(images):
    unit = (images + 1.0) / 2.0
    symmetric = ApproximateMassFlowDetector(**TINY_IMAGE, score_type="log_likelihood").fit(images)
    in_unit = ApproximateMassFlowDetector(
        **TINY_IMAGE, score_type="log_likelihood", pixel_range=(0, 1)
    ).fit(unit)
    # Same flow (it sees [0, 1] pixels either way); densities differ by the Jacobian of 2x - 1.
    np.testing.assert_allclose(
        symmetric.score_samples(images), in_unit.score_samples(unit) - 64 * np.log(2), rtol=1e-5
    )
    for det in (symmetric, in_unit):
        det.set_params(score_type="approximate_mass")
    np.testing.assert_allclose(
        symmetric.score_samples(images), in_unit.score_samples(unit), rtol=1e-5
    )


def test_image_scores_are_the_flow_density_and_its_pixel_gradient(images):
    det = ApproximateMassFlowDetector(**TINY_IMAGE, score_type="log_likelihood").fit(images)
    flow = _float64_flow(det)
    pixels = torch.from_numpy((images.astype(np.float64) + 1.0) / 2.0).requires_grad_(True)
    log_likelihood = flow.log_prob(pixels)  # midpoint dequantisation
    expected = log_likelihood.detach().numpy() - 64 * math.log(2.0)
    np.testing.assert_allclose(det.score_samples(images), expected, rtol=1e-5)
    # The approximate mass is the gradient norm with respect to the [0, 1] pixels.
    (gradient,) = torch.autograd.grad(log_likelihood.sum(), pixels)
    det.set_params(score_type="approximate_mass")
    np.testing.assert_allclose(
        det.score_samples(images), -np.linalg.norm(gradient.numpy(), axis=1), rtol=1e-4
    )


def test_image_input_errors(images):
    with pytest.raises(ValueError, match="pixel_range"):
        ApproximateMassFlowDetector(**TINY_IMAGE).fit(images * 255)
    with pytest.raises(ValueError, match="standardize"):
        ApproximateMassFlowDetector(**TINY_IMAGE, standardize=True).fit(images)
    with pytest.raises(ValueError, match="input_shape"):
        ApproximateMassFlowDetector(**{**TINY_IMAGE, "input_shape": (1, 4, 4)}).fit(images)
    with pytest.raises(ValueError, match="divisible"):
        ApproximateMassFlowDetector(**{**TINY_IMAGE, "n_scales": 5}).fit(images)
    with pytest.raises(ValueError, match="pixel_range"):
        ApproximateMassFlowDetector(**{**TINY_IMAGE, "pixel_range": (1, 0)}).fit(images)
    det = ApproximateMassFlowDetector(**TINY_IMAGE).fit(images)
    with pytest.raises(ValueError, match="outside pixel_range"):
        det.score_samples(images + 3.0)
    # Rounding noise at the edges of the range is accepted.
    assert np.all(np.isfinite(det.score_samples(np.clip(images, -1, 1) * (1 + 1e-6))))
