"""The speed settings of training: lazy R1 (``r1_interval``), ``mixed_precision``, step
budgets (``max_epochs="auto"``), fused optimizers and DLSGAN's one critic pass over real and
generated rows.

Each must leave what it does not speed up alone: ``r1_interval=1`` is the paper's step (the
regression fixture holds it bitwise), lazy R1 keeps its schedule across warm starts, and
bfloat16 autocast ranks obvious image outliers as float32 does.
"""

import pickle
from unittest import mock

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from sklearn.metrics import roc_auc_score

from skood import (
    ApproximateMassFlowDetector,
    AutoencoderDetector,
    DLSGANDetector,
    DMRDetector,
    InvGANDetector,
    _training,
)
from skood._latent import LatentModelMixin
from skood._precision import cpu_has_native_bfloat16, resolve_mixed_precision
from skood._training import fused_optimizer_options
from skood.base import BaseDetector
from skood.dlsgan import _critic_outputs
from skood.nn import stack_networks
from skood.utils.estimator_checks import check_divergence

# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")

MLP = {"latent_dim": 4, "hidden_dims": (16,), "device": "cpu", "random_state": 0}


@pytest.fixture(scope="module")
def X():
    return np.random.RandomState(0).normal(size=(96, 5))


def _r1_batches(detector) -> list[list[bool]]:
    """Per epoch, per batch: whether the step recorded (so took) the R1 penalty."""
    return [["r1_penalty" in batch for batch in epoch["batches"]] for epoch in detector.history_]


# ------------------------------------------------------------------------------- lazy R1
def test_the_default_takes_r1_every_fourth_step(X):
    detector = DLSGANDetector(batch_size=16, max_epochs=1, **MLP).fit(X)
    assert [flag for epoch in _r1_batches(detector) for flag in epoch] == [
        True, False, False, False, True, False
    ]  # fmt: skip


def test_lazy_r1_takes_the_penalty_every_interval_steps_across_epochs(X):
    # 96 rows in batches of 32: 3 steps per epoch, so an interval of 2 crosses epoch borders.
    detector = DLSGANDetector(r1_interval=2, batch_size=32, max_epochs=3, **MLP).fit(X)
    taken = [flag for epoch in _r1_batches(detector) for flag in epoch]
    assert taken == [step % 2 == 0 for step in range(9)]
    # The epoch's r1_penalty is the mean over the steps that took it, never a zero.
    assert all(value > 0 for value in detector.history_[:, "r1_penalty"])


def test_every_step_takes_r1_with_the_papers_interval(X):
    detector = DLSGANDetector(r1_interval=1, batch_size=32, max_epochs=2, **MLP).fit(X)
    assert all(all(epoch) for epoch in _r1_batches(detector))


def test_lazy_r1_weights_the_penalty_by_its_interval(X):
    # On a single step, which takes the penalty, lambda_r1=0.1 every 2 steps is the same update
    # as lambda_r1=0.2 every step (0.1 * 2 == 0.2 exactly in binary floating point).
    one_batch = X[:32]
    lazy = DLSGANDetector(lambda_r1=0.1, r1_interval=2, batch_size=32, max_epochs=1, **MLP)
    plain = DLSGANDetector(lambda_r1=0.2, r1_interval=1, batch_size=32, max_epochs=1, **MLP)
    np.testing.assert_array_equal(
        lazy.fit(one_batch).score_samples(X), plain.fit(one_batch).score_samples(X)
    )
    unweighted = DLSGANDetector(lambda_r1=0.1, batch_size=32, max_epochs=1, **MLP)
    assert not np.array_equal(unweighted.fit(one_batch).score_samples(X), plain.score_samples(X))


def test_lazy_r1_schedule_carries_over_warm_starts(X):
    once = DLSGANDetector(r1_interval=4, batch_size=32, max_epochs=5, **MLP).fit(X)
    warm = DLSGANDetector(r1_interval=4, batch_size=32, max_epochs=2, warm_start=True, **MLP)
    warm.fit(X).set_params(max_epochs=3).fit(X)
    assert _r1_batches(warm) == _r1_batches(once)
    np.testing.assert_array_equal(warm.score_samples(X), once.score_samples(X))


def test_lazy_r1_trains_a_model_of_the_same_quality(X):
    rng = np.random.RandomState(1)
    inliers, outliers = rng.normal(size=(200, 5)), rng.normal(loc=4.0, size=(20, 5))
    labels = np.r_[np.ones(200), -np.ones(20)]
    for interval in (1, 4):
        detector = DLSGANDetector(r1_interval=interval, max_epochs=5, **MLP).fit(inliers)
        scores = detector.score_samples(np.r_[inliers, outliers])
        assert roc_auc_score(labels, scores) > 0.95


def test_r1_interval_must_be_a_positive_integer(X):
    for bad in (0, -1, 1.5):
        with pytest.raises(ValueError, match="'r1_interval' parameter of DLSGANDetector"):
            DLSGANDetector(r1_interval=bad, **MLP).fit(X)


# ------------------------------------------------------------------------- mixed precision
@pytest.mark.parametrize(
    ("setting", "device", "images", "expected"),
    [
        (True, "cpu", False, True),
        (False, "cuda", True, False),
        ("auto", "cpu", False, False),
        ("auto", "cuda", False, False),
        ("auto", "cuda", True, True),
        ("auto", "cpu", True, None),  # the processor decides
    ],
)
def test_auto_mixed_precision_is_bfloat16_for_image_networks_where_it_pays(
    setting, device, images, expected
):
    if expected is None:
        expected = cpu_has_native_bfloat16()
    assert resolve_mixed_precision(setting, device, images=images) is expected


def test_the_net_trains_with_the_resolved_precision(X):
    table = DLSGANDetector(max_epochs=1, **MLP).fit(X)
    assert table.net_.mixed_precision is False
    forced = DLSGANDetector(max_epochs=1, mixed_precision=True, **MLP).fit(X)
    assert forced.net_.mixed_precision is True


def _digits_and_bright_canvases():
    """300 training digits in [-1, 1]; 100 held-out digits and 100 near-white canvases."""
    X = (load_digits().data / 8.0 - 1.0).astype(np.float32)
    X = X[np.random.RandomState(0).permutation(len(X))]
    train, held_out = X[:300], X[-100:]
    jitter = 0.1 * np.random.RandomState(1).uniform(size=held_out.shape).astype(np.float32)
    test = np.r_[held_out, 1.0 - jitter]
    return train, test, np.r_[np.ones(100), -np.ones(100)]


# bfloat16 has an 8-bit mantissa: the trained weights differ from float32's after a few
# steps, but the ranking of obvious outliers must not. Measured at random_state=0: AUROC 1.0
# in both precisions for these cases; the tolerance allows for other processors' kernels.
AUROC_TOLERANCE = 0.05


@pytest.mark.parametrize("make", [DLSGANDetector, AutoencoderDetector], ids=["dlsgan", "ae"])
def test_bfloat16_training_ranks_image_outliers_as_float32_does(make):
    train, test, labels = _digits_and_bright_canvases()
    common = {"latent_dim": 8, "max_epochs": 3, "batch_size": 16, "input_shape": (1, 8, 8)}
    aurocs, scores = {}, {}
    for precision in (False, True):
        detector = make(**common, mixed_precision=precision, device="cpu", random_state=0)
        scores[precision] = detector.fit(train).score_samples(test)
        assert detector.net_.mixed_precision is precision
        aurocs[precision] = roc_auc_score(labels, scores[precision])
    assert not np.array_equal(scores[False], scores[True])  # bfloat16 did run
    assert aurocs[False] > 0.9
    assert abs(aurocs[True] - aurocs[False]) <= AUROC_TOLERANCE


def test_bfloat16_training_is_reproducible():
    train, test, _ = _digits_and_bright_canvases()
    common = {"latent_dim": 8, "max_epochs": 1, "batch_size": 32, "input_shape": (1, 8, 8)}
    runs = [
        DLSGANDetector(**common, mixed_precision=True, device="cpu", random_state=3)
        .fit(train)
        .score_samples(test)
        for _ in range(2)
    ]
    np.testing.assert_array_equal(*runs)


def test_scoring_stays_float32_after_bfloat16_training():
    train, test, _ = _digits_and_bright_canvases()
    detector = DLSGANDetector(
        latent_dim=8, max_epochs=1, input_shape=(1, 8, 8), mixed_precision=True, device="cpu"
    ).fit(train)
    assert all(p.dtype == torch.float32 for p in detector.net_.module_.parameters())
    assert not torch.is_autocast_enabled("cpu")
    assert detector.score_samples(test).dtype == np.float64


# -------------------------------------------------------------------------- channels last
IMAGES = {"latent_dim": 8, "input_shape": (1, 8, 8), "device": "cpu", "random_state": 0}


def _conv_weights(detector) -> list[torch.Tensor]:
    return [
        parameter
        for network in detector.net_.networks().values()
        for parameter in network.parameters()
        if parameter.dim() == 4
    ]


def test_image_networks_train_channels_last_on_the_cpu(X):
    train, _, _ = _digits_and_bright_canvases()
    detector = DLSGANDetector(**IMAGES, max_epochs=1).fit(train[:64])
    assert detector.net_.channels_last is True
    weights = _conv_weights(detector)
    assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    assert DLSGANDetector(max_epochs=1, **MLP).fit(X).net_.channels_last is False


def test_channels_last_changes_only_the_rounding_of_a_step():
    # One batch, one step: the same update to float32 rounding (training over many steps
    # amplifies rounding differences, as between any two processors' kernels).
    train, test, _ = _digits_and_bright_canvases()
    params = {**IMAGES, "max_epochs": 1, "batch_size": 32, "mixed_precision": False}
    channels_last = DLSGANDetector(**params).fit(train[:32])
    with mock.patch.object(LatentModelMixin, "_channels_last_on_cpu", False):
        nchw = DLSGANDetector(**params).fit(train[:32])
    assert nchw.net_.channels_last is False
    np.testing.assert_allclose(
        channels_last.score_samples(test), nchw.score_samples(test), rtol=1e-4
    )
    # Adam's first update is about lr * sign(gradient): where a gradient is within rounding
    # of zero its sign may differ, so a weight may differ by a fraction of lr (1e-3), never
    # by more; a layout mistake (weights read in the wrong order) moves them by O(1).
    for first, second in zip(_conv_weights(channels_last), _conv_weights(nchw), strict=True):
        difference = (first - second).abs()
        assert difference.max() < 1e-3
        assert difference.mean() < 1e-7


def test_channels_last_image_fits_warm_start_and_reload_as_one_longer_fit(tmp_path):
    train, test, _ = _digits_and_bright_canvases()
    params = {**IMAGES, "batch_size": 32, "mixed_precision": False}
    once = DLSGANDetector(**params, max_epochs=2).fit(train[:96])
    warm = DLSGANDetector(**params, max_epochs=1, warm_start=True).fit(train[:96])
    restored = pickle.loads(pickle.dumps(warm))
    assert all(w.is_contiguous(memory_format=torch.channels_last) for w in _conv_weights(restored))
    for continued in (warm, restored):
        continued.fit(train[:96])
        np.testing.assert_array_equal(continued.score_samples(test), once.score_samples(test))


@pytest.mark.parametrize("precision", [True, False], ids=["bfloat16", "float32"])
def test_a_blown_up_image_fit_is_caught_with_the_speed_settings(precision):
    # Lazy R1, channels-last weights and (here) bfloat16: a huge learning rate still raises
    # TrainingDivergedError or warns, never leaving NaN scores (the contract check).
    train, _, _ = _digits_and_bright_canvases()
    detector = DLSGANDetector(**IMAGES, max_epochs=2, batch_size=32, mixed_precision=precision)
    check_divergence("DLSGANDetector", detector, X=train[:96])


# ------------------------------------------------------------ max_epochs="auto" (steps)
@given(
    n_rows=st.integers(1, 100_000),
    batch_size=st.integers(1, 512),
    max_epochs=st.integers(1, 500),
    steps=st.integers(1, 10_000),
)
@settings(max_examples=200, deadline=None)
def test_auto_epochs_make_the_step_budget_or_the_epoch_cap(n_rows, batch_size, max_epochs, steps):
    detector = InvGANDetector(max_epochs="auto", batch_size=batch_size)
    with (
        mock.patch.object(InvGANDetector, "_auto_max_epochs", max_epochs),
        mock.patch.object(InvGANDetector, "_auto_training_steps", steps),
    ):
        epochs = detector._epochs_for(n_rows)
    per_epoch = -(-n_rows // batch_size)
    assert 1 <= epochs <= max_epochs
    # Fewest whole epochs that reach the budget, unless the cap comes first.
    assert epochs == max_epochs or (
        epochs * per_epoch >= steps and (epochs - 1) * per_epoch < steps
    )
    assert InvGANDetector(max_epochs=7)._epochs_for(n_rows) == 7


def test_invgan_auto_epochs_are_the_papers_on_small_data_and_its_steps_on_large():
    detector = InvGANDetector(max_epochs="auto", batch_size=32)
    assert detector._epochs_for(226) == 300  # the paper's Arrhythmia run: 8 batches an epoch
    assert detector._epochs_for(256) == 300
    assert detector._epochs_for(6710) == 12  # 210 batches an epoch: 2,520 steps
    assert detector._epochs_for(1_000_000) == 1


def test_auto_epochs_train_that_many_epochs_and_warm_start_on(X):
    def make():
        return InvGANDetector(
            latent_dim=2, hidden_dims=(16,), n_centres=4, n_kmeans_samples=96, max_epochs=2,
            batch_size=16, device="cpu", random_state=0,
        )  # fmt: skip

    with (
        mock.patch.object(InvGANDetector, "_auto_max_epochs", 5),
        mock.patch.object(InvGANDetector, "_auto_training_steps", 12),
    ):
        # 96 rows in batches of 16: 6 steps an epoch, 2 epochs make the 12 steps.
        detector = make().set_params(max_epochs="auto").fit(X)
        assert len(detector.history_) == 2
        assert sum(len(epoch["batches"]) for epoch in detector.history_) == 12
        small = make().set_params(max_epochs="auto").fit(X[:20])  # 2 steps an epoch: the cap
        assert len(small.history_) == 5
        detector.set_params(warm_start=True).fit(X)
        assert len(detector.history_) == 4
    longer = make().set_params(max_epochs=4).fit(X)
    np.testing.assert_array_equal(detector.score_samples(X), longer.score_samples(X))


@pytest.mark.parametrize("make", [DLSGANDetector, AutoencoderDetector])
def test_auto_epochs_are_refused_where_the_detector_has_no_step_budget(make, X):
    with pytest.raises(ValueError, match="max_epochs"):
        make(max_epochs="auto", **MLP).fit(X)


# ------------------------------------------------------------------ fused optimizers
@pytest.mark.parametrize(
    "make",
    [
        lambda: DLSGANDetector(max_epochs=1, **MLP),
        lambda: AutoencoderDetector(max_epochs=1, **MLP),
        lambda: ApproximateMassFlowDetector(
            max_epochs=1, n_couplings=2, hidden_dims=(8,), device="cpu", random_state=0
        ),
        lambda: InvGANDetector(max_epochs=1, **MLP),
    ],
    ids=["dlsgan", "autoencoder", "flow", "invgan"],
)
def test_adam_trains_with_its_fused_kernel_where_pytorch_has_one(make, X):
    detector = make().fit(X)
    optimizers = [getattr(detector.net_, name + "_") for name in detector.net_.optimizer_names()]
    assert optimizers and all(optimizer.defaults["fused"] for optimizer in optimizers)


def test_other_optimizers_and_devices_without_the_kernel_keep_the_default_step():
    assert fused_optimizer_options(torch.optim.SGD, "cpu") == {}
    assert fused_optimizer_options(torch.optim.Adam, "cpu") == {"optimizer__fused": True}

    # A PyTorch without the kernel for the device (the CPU's came in 2.4) refuses fused=True.
    def adam_without_a_fused_kernel(params, **options):
        if options.get("fused"):
            raise RuntimeError("`fused=True` requires all the params to be on supported devices")
        return torch.optim.Adam(params, **options)

    assert not _training._fused_step_runs(adam_without_a_fused_kernel, "cpu")


def test_dmr_keeps_sgd_without_a_fused_kernel():
    rng = np.random.RandomState(0)
    X, y = rng.normal(size=(60, 4)), rng.randint(2, size=60)
    detector = DMRDetector(max_epochs=1, hidden_dims=(8,), device="cpu", random_state=0)
    detector.fit(X, y)
    assert not detector.net_.optimizer_.defaults.get("fused")


def test_the_fused_optimizer_changes_only_the_rounding(X):
    # Fused and for-loop Adam compute the same update; over a short fit the scores agree to
    # float32 rounding grown by training, and both rank the outliers alike.
    rng = np.random.RandomState(1)
    inliers, outliers = rng.normal(size=(200, 5)), rng.normal(loc=4.0, size=(20, 5))
    test = np.r_[inliers, outliers]
    labels = np.r_[np.ones(200), -np.ones(20)]
    fused = DLSGANDetector(max_epochs=3, **MLP).fit(inliers)
    with mock.patch.object(BaseDetector, "_fused_optimizer", False):
        loop = DLSGANDetector(max_epochs=3, **MLP).fit(inliers)
    assert loop.net_.optimizer_.defaults["fused"] is None
    fused_scores, loop_scores = fused.score_samples(test), loop.score_samples(test)
    np.testing.assert_allclose(fused_scores, loop_scores, rtol=1e-3)
    assert roc_auc_score(labels, fused_scores) > 0.95
    assert roc_auc_score(labels, loop_scores) > 0.95


# --------------------------------------------------- DLSGAN's one pass over real and fake rows
def _two_critic_passes(generator, critic, x_real, scaled_latent):
    with torch.no_grad():
        x_fake = generator(scaled_latent)
    logit_real, _, _ = critic(x_real)
    logit_fake, predicted_fake, log_variance_fake = critic(x_fake)
    return logit_real, logit_fake, predicted_fake, log_variance_fake


@pytest.mark.parametrize("log_variance", [False, True])
@pytest.mark.parametrize("members", [None, 3])
def test_one_critic_pass_gives_the_outputs_of_two(members, log_variance, X):
    variant = "infogan" if log_variance else "dlsgan"
    detectors = [
        DLSGANDetector(max_epochs=1, variant=variant, **{**MLP, "random_state": seed}).fit(X)
        for seed in range(members or 1)
    ]
    if members is None:
        generator, critic = detectors[0].net_.module_, detectors[0].net_.discriminator_
        x_real = torch.as_tensor(X[:32], dtype=torch.float32)
        latent = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    else:
        generator = stack_networks([d.net_.module_ for d in detectors])
        critic = stack_networks([d.net_.discriminator_ for d in detectors])
        x_real = torch.as_tensor(X[:32], dtype=torch.float32).expand(members, 32, 5)
        latent = torch.randn(members, 32, 4, generator=torch.Generator().manual_seed(0))
    merged = _critic_outputs(
        generator,
        critic,
        x_real,
        latent,
        r1_step=False,
        autocast=detectors[0].net_.autocast,
    )
    assert merged[-1] is None  # no R1 gradient off the R1 steps
    for one, two in zip(
        merged[:-1], _two_critic_passes(generator, critic, x_real, latent), strict=True
    ):
        if two is None:
            assert one is None
            continue
        assert one.shape == two.shape
        np.testing.assert_allclose(one.detach().numpy(), two.detach().numpy(), rtol=1e-6, atol=1e-6)
