"""Joint training: members of one configuration trained as one stacked net (skood._joint).

A jointly trained member must be the member trained alone, up to float rounding: same scores,
weights, traced variance, offset, history and optimizer state, and a warm start that continues
as after a fit of its own. Failures (divergence, Ctrl-C, bad input) end as for one member, and
the stacked step runs once per batch for all members.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.ensemble import IsolationForest

from skood import (
    ApproximateMassFlowDetector,
    AutoencoderDetector,
    BaggingDetector,
    ConditionalDLSGAN,
    DLSGANDetector,
    TrainingDivergedError,
)
from skood._joint import can_fit_jointly, fit_jointly
from skood._training import FiniteGradientNormClipping, MultiModuleNet, clip_member_gradients
from skood.dlsgan import _DLSGANNet
from skood.flow import _FlowNet, log_prob_and_gradient_norm
from skood.nn import MLP, StackedLinear, copy_stacked_into, stack_networks
from skood.nn.conv import conv_networks
from skood.nn.realnvp import RealNVPTabular

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"hidden_dims": (16,), "latent_dim": 3, "device": "cpu"}
# Float rounding of a batched product against a single one, grown over a few dozen steps.
TOLERANCE = {"rtol": 1e-4, "atol": 1e-4}


def _data(n_rows=120, n_features=4, seed=0):
    return np.random.RandomState(seed).normal(size=(n_rows, n_features))


def _alone_and_joint(params, datasets, seeds, detector_class=DLSGANDetector):
    alone = [
        detector_class(random_state=seed, **params).fit(X)
        for seed, X in zip(seeds, datasets, strict=True)
    ]
    joint = [detector_class(random_state=seed, **params) for seed in seeds]
    fit_jointly(joint, datasets)
    return alone, joint


def _assert_same_fit(alone, joint, X):
    np.testing.assert_allclose(joint.score_samples(X), alone.score_samples(X), **TOLERANCE)
    np.testing.assert_allclose(joint.latent_variance_, alone.latent_variance_, **TOLERANCE)
    assert joint.offset_ == pytest.approx(alone.offset_, rel=1e-4, abs=1e-4)
    for name, network in alone.net_.networks().items():
        theirs = dict(joint.net_.networks()[name].named_parameters())
        for parameter_name, parameter in network.named_parameters():
            torch.testing.assert_close(theirs[parameter_name], parameter, **TOLERANCE)
    assert len(joint.history_) == len(alone.history_)
    for mine, theirs in zip(joint.history_, alone.history_, strict=True):
        assert set(mine) == set(theirs)
        assert len(mine["batches"]) == len(theirs["batches"])
        for key in ("train_loss", "generator_loss", "encoder_loss"):
            assert mine[key] == pytest.approx(theirs[key], rel=1e-3, abs=1e-4)
    for name in alone.net_.optimizer_names():
        mine, theirs = getattr(joint.net_, name + "_"), getattr(alone.net_, name + "_")
        assert mine.param_groups[0]["lr"] == theirs.param_groups[0]["lr"]
        mine_state = mine.state_dict()["state"]
        theirs_state = theirs.state_dict()["state"]
        assert mine_state.keys() == theirs_state.keys()
        for index, state in theirs_state.items():
            assert float(mine_state[index]["step"]) == float(state["step"])
            torch.testing.assert_close(
                mine_state[index]["exp_avg"], state["exp_avg"], rtol=1e-3, atol=1e-6
            )


@pytest.mark.parametrize("variant", ["dlsgan", "msegan", "infogan"])
def test_joint_members_equal_members_fitted_alone(variant):
    X = _data()
    params = {**TINY, "variant": variant, "max_epochs": 3}
    alone, joint = _alone_and_joint(params, [X] * 3, [0, 1, 2])
    for one, other in zip(alone, joint, strict=True):
        _assert_same_fit(one, other, X)
    # Different seeds still give different members.
    assert not np.allclose(joint[0].score_samples(X), joint[1].score_samples(X))


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_members=st.integers(2, 4),
    n_rows=st.integers(4, 40),
    n_features=st.integers(1, 5),
    batch_size=st.integers(2, 16),
    r1_interval=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_joint_training_property(n_members, n_rows, n_features, batch_size, r1_interval, seed):
    # Whatever the number of members, rows, features, batch size and R1 schedule: each member
    # trains as it would alone (its data differ per member too).
    rng = np.random.RandomState(seed)
    datasets = [rng.normal(size=(n_rows, n_features)) for _ in range(n_members)]
    params = {**TINY, "max_epochs": 2, "batch_size": batch_size, "r1_interval": r1_interval}
    seeds = [seed + member for member in range(n_members)]
    alone, joint = _alone_and_joint(params, datasets, seeds)
    for one, other, X in zip(alone, joint, datasets, strict=True):
        _assert_same_fit(one, other, X)


def test_warm_start_after_joint_training_continues_as_after_a_fit_alone():
    X = _data()
    params = {**TINY, "max_epochs": 2}
    alone, joint = _alone_and_joint(params, [X, X], [3, 4])
    for one, other in zip(alone, joint, strict=True):
        for detector in (one, other):
            detector.set_params(warm_start=True, max_epochs=2).fit(X)
        _assert_same_fit(one, other, X)
        assert len(other.history_) == 4


@pytest.mark.parametrize("kind", ["dlsgan", "flow"])
def test_one_stacked_step_per_batch_for_all_members(kind, monkeypatch):
    net_class, detector_class, params = {
        "dlsgan": (_DLSGANNet, DLSGANDetector, {**TINY, "max_epochs": 2}),
        "flow": (_FlowNet, ApproximateMassFlowDetector, {**FLOW, "max_epochs": 2}),
    }[kind]
    calls = []
    step = net_class.joint_train_step.__func__

    def counted(cls, nets, *args):
        calls.append(len(nets))
        return step(cls, nets, *args)

    monkeypatch.setattr(net_class, "joint_train_step", classmethod(counted))
    members = [detector_class(random_state=seed, batch_size=10, **params) for seed in range(5)]
    fit_jointly(members, [_data(n_rows=40)] * 5)
    assert calls == [5] * 8  # 2 epochs of 4 batches, one step each for all five members


def test_members_of_one_configuration_only():
    X = _data()
    with pytest.raises(ValueError, match="differ by seed only"):
        fit_jointly([DLSGANDetector(**TINY), DLSGANDetector(lr=1e-2, **TINY)], [X, X])
    with pytest.raises(ValueError, match="one class"):
        fit_jointly([DLSGANDetector(**TINY), AutoencoderDetector(device="cpu")], [X, X])
    with pytest.raises(ValueError, match="one number of epochs and one data shape"):
        fit_jointly([DLSGANDetector(**TINY), DLSGANDetector(**TINY)], [X, X[:50]])


def test_which_detectors_train_jointly():
    assert can_fit_jointly(DLSGANDetector())
    assert can_fit_jointly(DLSGANDetector(variant="infogan"))
    assert can_fit_jointly(ApproximateMassFlowDetector())
    assert not can_fit_jointly(DLSGANDetector(input_shape=(1, 8, 8)))
    assert not can_fit_jointly(ApproximateMassFlowDetector(input_shape=(1, 8, 8)))
    assert not can_fit_jointly(ConditionalDLSGAN())
    assert not can_fit_jointly(AutoencoderDetector())
    assert not can_fit_jointly(IsolationForest())


def test_bad_input_of_one_member_leaves_every_member_unfitted():
    X = _data()
    bad = X.copy()
    bad[3, 1] = np.nan
    members = [DLSGANDetector(random_state=seed, max_epochs=1, **TINY) for seed in range(3)]
    with pytest.raises(ValueError, match="NaN"):
        fit_jointly(members, [X, X, bad])
    assert not any(hasattr(member, "net_") or hasattr(member, "offset_") for member in members)


def _divergence_outcome(fit):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit()
        except TrainingDivergedError as error:
            return "error", str(error).split(":")[0]
    return "warned", sorted({type(warning.message).__name__ for warning in caught})


@pytest.mark.parametrize("deferred", [False, True])
def test_divergence_ends_as_for_the_member_alone(deferred, monkeypatch):
    monkeypatch.setattr(MultiModuleNet, "deferred_loss_checks", deferred)
    X = _data()
    params = {**TINY, "lr": 1e6, "max_epochs": 3}
    alone = _divergence_outcome(lambda: DLSGANDetector(random_state=0, **params).fit(X))
    members = [DLSGANDetector(random_state=0, **params), DLSGANDetector(random_state=0, **params)]
    joint = _divergence_outcome(lambda: fit_jointly(members, [X, X]))
    assert joint == alone
    if joint[0] == "error":
        assert not any(hasattr(member, "net_") for member in members)


def test_deferred_checks_train_the_same_members(monkeypatch):
    X = _data()
    params = {**TINY, "max_epochs": 2}
    immediate = [DLSGANDetector(random_state=seed, **params) for seed in (0, 1)]
    fit_jointly(immediate, [X, X])
    monkeypatch.setattr(MultiModuleNet, "deferred_loss_checks", True)
    deferred = [DLSGANDetector(random_state=seed, **params) for seed in (0, 1)]
    fit_jointly(deferred, [X, X])
    for one, other in zip(immediate, deferred, strict=True):
        np.testing.assert_array_equal(other.score_samples(X), one.score_samples(X))
        assert other.history_[:, "batches"] == one.history_[:, "batches"]


def test_ctrl_c_reaches_the_caller_and_leaves_no_member_fitted(monkeypatch):
    step = _DLSGANNet.joint_train_step.__func__
    calls = []

    def interrupted(cls, nets, *args):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return step(cls, nets, *args)

    monkeypatch.setattr(_DLSGANNet, "joint_train_step", classmethod(interrupted))
    members = [DLSGANDetector(random_state=seed, max_epochs=2, **TINY) for seed in (0, 1)]
    with pytest.raises(KeyboardInterrupt):
        fit_jointly(members, [_data(), _data()])
    assert not any(hasattr(member, "net_") for member in members)


def test_gradient_callbacks_are_refused(monkeypatch):
    original = DLSGANDetector._net_callbacks

    def with_clipping(self):
        return [*original(self), ("clip", FiniteGradientNormClipping(gradient_clip_value=1.0))]

    monkeypatch.setattr(DLSGANDetector, "_net_callbacks", with_clipping)
    members = [DLSGANDetector(random_state=seed, max_epochs=1, **TINY) for seed in (0, 1)]
    with pytest.raises(TypeError, match="gradient callback 'clip'"):
        fit_jointly(members, [_data(), _data()])


# ---------------------------------------------------------------- flows
FLOW = {"n_couplings": 2, "hidden_dims": (16,), "max_epochs": 3, "device": "cpu"}


def _flows_alone_and_joint(params, datasets, seeds):
    return _alone_and_joint(params, datasets, seeds, ApproximateMassFlowDetector)


def _assert_same_flow_fit(alone, joint, X):
    for score_type in ("approximate_mass", "log_likelihood"):
        for detector in (alone, joint):
            detector.set_params(score_type=score_type)
        np.testing.assert_allclose(joint.score_samples(X), alone.score_samples(X), **TOLERANCE)
    assert joint.offset_ == pytest.approx(alone.offset_, rel=1e-4, abs=1e-4)
    theirs = dict(joint.net_.module_.named_parameters())
    for name, parameter in alone.net_.module_.named_parameters():
        torch.testing.assert_close(theirs[name], parameter, **TOLERANCE)
    assert len(joint.history_) == len(alone.history_)
    keys = [key for key in alone.history_[-1] if key in ("train_loss", "nll", "penalty")]
    for mine, theirs in zip(joint.history_, alone.history_, strict=True):
        assert set(mine) == set(theirs)
        for key in keys:
            assert mine[key] == pytest.approx(theirs[key], rel=1e-4, abs=1e-5)
    mine_state = joint.net_.optimizer_.state_dict()["state"]
    theirs_state = alone.net_.optimizer_.state_dict()["state"]
    assert mine_state.keys() == theirs_state.keys()
    for index, state in theirs_state.items():
        assert float(mine_state[index]["step"]) == float(state["step"])
        torch.testing.assert_close(
            mine_state[index]["exp_avg_sq"], state["exp_avg_sq"], rtol=1e-3, atol=1e-9
        )


@pytest.mark.parametrize(
    "settings",
    [{}, {"alpha": 0.0}, {"penalty": "per_sample"}, {"max_grad_norm": None}],
    ids=["batch-mean-penalty", "vanilla", "per-sample-penalty", "no-clipping"],
)
def test_joint_flows_equal_flows_fitted_alone(settings):
    X = _data()
    alone, joint = _flows_alone_and_joint({**FLOW, **settings}, [X] * 3, [0, 1, 2])
    for one, other in zip(alone, joint, strict=True):
        _assert_same_flow_fit(one, other, X)
    assert not np.allclose(joint[0].score_samples(X), joint[1].score_samples(X))


def test_joint_flows_clip_each_members_gradient_as_alone():
    # At a tiny max_grad_norm clipping sets the step size (Adam's eps then dominates), so a
    # stacked step that skipped clipping, or clipped the members' joint norm, would differ.
    datasets = [_data(seed=0), _data(seed=1)]  # members on other rows, so other gradients
    params = {**FLOW, "max_grad_norm": 1e-9, "weight_decay": 0.0}
    alone, joint = _flows_alone_and_joint(params, datasets, [0, 1])
    for one, other, X in zip(alone, joint, datasets, strict=True):
        _assert_same_flow_fit(one, other, X)
    unclipped = ApproximateMassFlowDetector(random_state=0, **{**params, "max_grad_norm": None})
    unclipped.fit(datasets[0])
    assert not np.allclose(
        unclipped.score_samples(datasets[0]), joint[0].score_samples(datasets[0]), rtol=1e-3
    )


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_members=st.integers(2, 3),
    n_rows=st.integers(4, 30),
    n_features=st.integers(2, 5),
    batch_size=st.integers(2, 16),
    seed=st.integers(0, 2**16),
)
def test_joint_flow_training_property(n_members, n_rows, n_features, batch_size, seed):
    rng = np.random.RandomState(seed)
    datasets = [rng.normal(size=(n_rows, n_features)) for _ in range(n_members)]
    params = {**FLOW, "max_epochs": 2, "batch_size": batch_size}
    seeds = [seed + member for member in range(n_members)]
    alone, joint = _flows_alone_and_joint(params, datasets, seeds)
    for one, other, X in zip(alone, joint, datasets, strict=True):
        _assert_same_flow_fit(one, other, X)


@pytest.mark.parametrize("max_grad_norm", [None, 100.0])
@pytest.mark.parametrize("deferred", [False, True])
def test_flow_divergence_ends_as_for_the_member_alone(deferred, max_grad_norm, monkeypatch):
    monkeypatch.setattr(MultiModuleNet, "deferred_loss_checks", deferred)
    X = _data()
    params = {**FLOW, "lr": 1e8, "max_grad_norm": max_grad_norm}
    alone = _divergence_outcome(
        lambda: ApproximateMassFlowDetector(random_state=0, **params).fit(X)
    )
    members = [ApproximateMassFlowDetector(random_state=0, **params) for _ in range(2)]
    joint = _divergence_outcome(lambda: fit_jointly(members, [X, X]))
    assert joint == alone
    assert joint[0] == "error"
    assert not any(hasattr(member, "net_") for member in members)


def _fitted_flow_nets(n_members, **params):
    members = [
        ApproximateMassFlowDetector(random_state=seed, **{**FLOW, "max_epochs": 1, **params})
        for seed in range(n_members)
    ]
    for member in members:
        member.fit(_data())
    return [member.net_ for member in members]


def test_clip_member_gradients_clips_each_member_as_torch_clips_it_alone():
    nets = _fitted_flow_nets(3, max_grad_norm=0.5)
    stacked = stack_networks([net.module_ for net in nets])
    parameters = list(stacked.parameters())
    generator = torch.Generator().manual_seed(0)
    for parameter in parameters:
        parameter.grad = torch.randn(parameter.shape, generator=generator)
        parameter.grad *= torch.tensor([0.01, 1.0, 30.0]).view(-1, *[1] * (parameter.dim() - 1))
    expected = []  # each member's gradient clipped alone, by torch
    for index in range(3):
        alone = [torch.zeros(p.shape[1:], requires_grad=True) for p in parameters]
        for copy_, parameter in zip(alone, parameters, strict=True):
            copy_.grad = parameter.grad[index].clone()
        torch.nn.utils.clip_grad_norm_(alone, max_norm=0.5)
        expected.append([copy_.grad for copy_ in alone])
    clip_member_gradients(nets, "gradient_clipping", parameters)
    for index in range(3):
        for parameter, grad in zip(parameters, expected[index], strict=True):
            torch.testing.assert_close(parameter.grad[index], grad, rtol=1e-6, atol=1e-9)
    # The first member's small gradient is left alone, the others are scaled down to 0.5.
    norms = torch.stack([p.grad.flatten(1).norm(dim=1) for p in parameters]).norm(dim=0)
    assert norms[0] < 0.5 and torch.allclose(norms[1:], torch.tensor([0.5, 0.5]), rtol=1e-4)


def test_clip_member_gradients_stops_at_a_members_non_finite_norm():
    nets = _fitted_flow_nets(2)
    stacked = stack_networks([net.module_ for net in nets])
    parameters = list(stacked.parameters())
    for parameter in parameters:
        parameter.grad = torch.ones_like(parameter)
    parameters[0].grad[1].fill_(float("inf"))
    with pytest.raises(TrainingDivergedError, match="the parameter gradient norm became"):
        clip_member_gradients(nets, "gradient_clipping", parameters)


def test_stacked_realnvp_runs_each_member_on_its_own_slice():
    members = [
        RealNVPTabular(
            3, n_couplings=3, hidden_dims=(8,), generator=torch.Generator().manual_seed(m)
        )
        for m in range(3)
    ]
    with torch.no_grad():  # away from the identity that zero output layers start at
        for member in members:
            for parameter in member.parameters():
                parameter.add_(0.1 * torch.randn_like(parameter))
    stacked = stack_networks(members)
    assert stacked.couplings[0].scale.shape == (3, 1, 3)
    x = torch.randn(3, 7, 3)
    z, log_det = stacked(x)
    log_likelihood, norms = log_prob_and_gradient_norm(stacked.log_prob, x, reduction="mean")
    for index, member in enumerate(members):
        z_alone, log_det_alone = member(x[index])
        torch.testing.assert_close(z[index], z_alone)
        torch.testing.assert_close(log_det[index], log_det_alone)
        torch.testing.assert_close(stacked.inverse(z)[index], member.inverse(z_alone))
        alone_ll, alone_norms = log_prob_and_gradient_norm(
            member.log_prob, x[index], reduction="mean"
        )
        torch.testing.assert_close(log_likelihood[index], alone_ll)
        torch.testing.assert_close(norms[index], alone_norms)


# ---------------------------------------------------------------- the ensemble
def test_bagging_trains_dlsgan_members_jointly_and_others_alone():
    X = _data(n_rows=150)
    params = {"n_estimators": 3, "max_samples": 0.8, "max_features": 0.75, "random_state": 0}
    gan = DLSGANDetector(max_epochs=2, **TINY)
    joint = BaggingDetector(gan, **params).fit(X)
    alone = BaggingDetector(gan, joint_training=False, **params).fit(X)
    assert joint.joint_training_ and not alone.joint_training_
    np.testing.assert_allclose(joint.score_samples(X), alone.score_samples(X), atol=1e-3)
    assert joint.decision_function(X) == pytest.approx(alone.decision_function(X), abs=1e-3)
    for one, other in zip(joint.estimators_, alone.estimators_, strict=True):
        assert one.n_features_in_ == other.n_features_in_ == 3
        _assert_same_fit(other, one, X[:, :3])
    forest = BaggingDetector(IsolationForest(n_estimators=5), random_state=0).fit(X)
    assert not forest.joint_training_


def test_bagging_trains_flow_members_jointly():
    X = _data(n_rows=150)
    params = {"n_estimators": 3, "max_samples": 0.8, "random_state": 0}
    flow = ApproximateMassFlowDetector(**{**FLOW, "max_epochs": 2})
    joint = BaggingDetector(flow, **params).fit(X)
    alone = BaggingDetector(flow, joint_training=False, **params).fit(X)
    assert joint.joint_training_ and not alone.joint_training_
    np.testing.assert_allclose(joint.score_samples(X), alone.score_samples(X), atol=1e-3)
    for one, other in zip(joint.estimators_, alone.estimators_, strict=True):
        _assert_same_flow_fit(other, one, X)


def test_bagging_joint_training_true_needs_a_detector_that_stacks():
    X = _data()
    with pytest.raises(ValueError, match="cannot train its members jointly"):
        BaggingDetector(IsolationForest(), joint_training=True).fit(X)
    with pytest.raises(ValueError, match="cannot train its members jointly"):
        BaggingDetector(DLSGANDetector(**TINY), n_estimators=1, joint_training=True).fit(X)


# ---------------------------------------------------------------- skood.nn.stacked
def test_stacked_networks_run_each_member_on_its_own_slice():
    members = [
        MLP(3, (8, 5), 2, equalized_lr=equalized, generator=torch.Generator().manual_seed(seed))
        for seed, equalized in ((0, True), (1, True), (2, True))
    ]
    stacked = stack_networks(members)
    x = torch.randn(3, 7, 3)
    for index, member in enumerate(members):
        torch.testing.assert_close(stacked(x)[index], member(x[index]))
    plain = [torch.nn.Linear(3, 2, bias=False) for _ in range(2)]
    stacked_plain = stack_networks(plain)
    assert isinstance(stacked_plain, StackedLinear) and stacked_plain.bias is None
    torch.testing.assert_close(stacked_plain(x[:2])[1], plain[1](x[1]))


def test_copy_stacked_into_writes_parameters_and_buffers_back():
    from skood.nn import ScaledLatentGenerator

    members = [ScaledLatentGenerator(MLP(2, (4,), 3), 2) for _ in range(2)]
    stacked = stack_networks(members)
    assert stacked.traced_variance.shape == (2, 2)
    with torch.no_grad():
        for parameter in stacked.parameters():
            parameter.add_(1.0)
        stacked.traced_variance.mul_(3.0)
    copy_stacked_into(stacked, members)
    for index, member in enumerate(members):
        assert torch.equal(member.traced_variance, stacked.traced_variance[index])
        torch.testing.assert_close(member.network[0].weight, stacked.network[0].weight[index])
    # The scale and the trace act on each member's own row.
    torch.testing.assert_close(stacked.latent_scale()[1], members[1].latent_scale())


def test_networks_that_do_not_stack_are_refused():
    body = MLP(3, (4,), None, batch_norm=True, equalized_lr=False)
    with pytest.raises(TypeError, match="BatchNorm1d with parameters"):
        stack_networks([body, body])
    generator, _ = conv_networks("small", 4, (1, 8, 8))
    with pytest.raises(TypeError, match="linear layers only"):
        stack_networks([generator, generator])
    with pytest.raises(ValueError, match="one structure"):
        stack_networks([MLP(3, (4,), 2), MLP(3, (4, 4), 2)])
    with pytest.raises(ValueError, match="one kind and one shape"):
        StackedLinear([torch.nn.Linear(3, 2), torch.nn.Linear(3, 4)])
