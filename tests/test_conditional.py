"""ConditionalDLSGAN: the fixed classifier, the projection edits, sampling, labels, persistence.

The shared contract checks run in tests/test_common.py (tests/_detectors.py lists it).
"""

import copy
import pickle

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression

import skood.io
from skood import ConditionalDLSGAN, DLSGANDetector

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = {"latent_dim": 4, "hidden_dims": (16,), "max_epochs": 2, "device": "cpu", "random_state": 0}
MEANS = np.array([[-2.0, -2.0, 0.0, 0.0], [2.0, 2.0, 0.0, 0.0]])


def two_classes(n_rows: int, seed: int = 0):
    rng = np.random.RandomState(seed)
    y = np.repeat([0, 1], n_rows // 2)
    return rng.normal(size=(n_rows, 4)) + MEANS[y], y


@pytest.fixture(scope="module")
def classes_model():
    X, y = two_classes(200)
    return ConditionalDLSGAN(**FAST).fit(X, y), X, y


@pytest.fixture(scope="module")
def attributes_model():
    X, y = two_classes(200)
    rng = np.random.RandomState(1)
    labels = pd.DataFrame({"right": y, "noisy": rng.randint(2, size=len(y))})
    return ConditionalDLSGAN(**FAST).fit(X, labels), X, labels


# --------------------------------------------------------------------------- the classifier
@pytest.mark.parametrize("bias", [False, True])
def test_the_fixed_classifier_never_changes_during_fit(bias):
    X, y = two_classes(200)
    model = ConditionalDLSGAN(**FAST, classifier_bias=bias, warm_start=True)
    model.fit(X, y)
    weights, intercept = model.classifier_weights_.copy(), model.classifier_intercept_.copy()
    assert not list(model.net_.classifier_.parameters())  # buffers only: nothing to train
    assert np.any(intercept != 0) == bias
    # Drawn from the seed before training: rebuilt networks with the same seed carry it.
    rebuilt = model._build_networks(X.shape[1], model.net_.seed)["classifier"]
    np.testing.assert_array_equal(rebuilt.weight.double().numpy(), weights)
    model.fit(X, y)  # a warm start trains further
    assert len(model.history_) == 4
    np.testing.assert_array_equal(model.classifier_weights_, weights)
    np.testing.assert_array_equal(model.net_.classifier_.weight.double().numpy(), weights)
    np.testing.assert_array_equal(model.classifier_intercept_, intercept)


def test_pseudo_labels_follow_the_fixed_classifier():
    classifier = ConditionalDLSGAN(**FAST).fit(*two_classes(100)).net_.classifier_
    u = torch.randn(50, 4, generator=torch.Generator().manual_seed(0))
    labels = classifier.pseudo_labels(u)
    np.testing.assert_array_equal(labels.argmax(1), (u @ classifier.weight).argmax(1))
    assert torch.all(labels.sum(1) == 1)


# --------------------------------------------------------------------------- edits
@pytest.mark.parametrize("fixture", ["classes_model", "attributes_model"])
def test_editing_to_the_current_output_reconstructs(fixture, request):
    model, X, _ = request.getfixturevalue(fixture)
    attribute = 1 if fixture == "classes_model" else "right"
    current = model.attribute_value(X[:20], attribute)
    reconstruction = model.inverse_transform(model.transform(X[:20]))
    np.testing.assert_allclose(model.edit(X[:20], attribute, current), reconstruction, atol=1e-8)


@settings(max_examples=25, deadline=None)
@given(
    value=st.floats(-5, 5, allow_nan=False),
    target=st.sampled_from([0, 1, "right", "noisy"]),
)
def test_the_projection_sets_the_output_exactly(classes_model, attributes_model, value, target):
    model, X, _ = classes_model if isinstance(target, int) else attributes_model
    latents = model.transform(X[:10])
    column = model._column(target)
    edited = model._edited_latents(latents, column, np.full((10, 1), value))[:, 0]
    direction, offset, std = model._directions(latents, column)
    np.testing.assert_allclose((np.sum(edited * direction, 1) + offset) / std, value, atol=1e-9)
    # Only the component along the direction moves.
    moved = edited - latents
    unit = direction / np.linalg.norm(direction, axis=1, keepdims=True)
    np.testing.assert_allclose(moved - np.sum(moved * unit, 1)[:, None] * unit, 0, atol=1e-9)


def test_edit_path_stacks_the_edits(attributes_model):
    model, X, _ = attributes_model
    values = [-1.0, 0.0, 1.5]
    paths = model.edit_path(X[:5], "noisy", values)
    assert paths.shape == (5, 3, 4)
    for j, value in enumerate(values):
        np.testing.assert_allclose(paths[:, j], model.edit(X[:5], 1, value), atol=1e-10)


def test_edits_move_rows_to_the_other_class():
    # 2,000 rows x 10 epochs: about a second. Class-0 rows edited toward class 1 come out
    # where an independent classifier sees class 1, and near class 1's mean.
    X, y = two_classes(2000)
    model = ConditionalDLSGAN(
        latent_dim=4, hidden_dims=(32, 32), max_epochs=10, batch_size=64,
        variance_decay=0.99, device="cpu", random_state=2,
    ).fit(X, y)  # fmt: skip
    judge = LogisticRegression().fit(X, y)
    held_out, _ = two_classes(400, seed=5)
    rows = held_out[:200]  # class 0
    before = np.mean(judge.predict(rows) == 1)
    edited = model.edit(rows, 1, 1.0)
    after = np.mean(judge.predict(edited) == 1)
    assert before < 0.05 and after > 0.6, (before, after)
    distance = np.linalg.norm(edited.mean(0) - MEANS[1])
    assert distance < np.linalg.norm(rows.mean(0) - MEANS[1]) / 2
    # Toward the own class, the reconstruction keeps its class.
    assert np.mean(judge.predict(model.edit(rows, 0, 1.0)) == 0) > 0.8


# --------------------------------------------------------------------------- sampling
def test_conditional_samples_have_the_requested_labels(classes_model, attributes_model):
    model, _, _ = classes_model
    samples = model.sample(20, attributes=1, random_state=0)
    assert samples.shape == (20, 4)
    np.testing.assert_array_equal(samples, model.sample(20, attributes=1, random_state=0))
    # The decoded codes were chosen by the classifier: re-derive them from the same draws.
    rng = np.random.RandomState(0)
    latents = rng.standard_normal((4096, 4)) * model.latent_scale_
    accepted = latents[np.argmax(latents @ model.classifier_weights_, 1) == 1][:20]
    np.testing.assert_allclose(samples, model.inverse_transform(accepted))
    model, _, _ = attributes_model
    both = model.sample(10, attributes={"right": 1, 1: 0}, random_state=0)
    listed = model.sample(10, attributes=[1, 0], random_state=0)
    np.testing.assert_array_equal(both, listed)


# --------------------------------------------------------------------------- labels, errors
def test_label_kinds_and_names(classes_model, attributes_model):
    model, _, _ = classes_model
    assert model.label_type_ == "classes" and list(model.classes_) == [0, 1]
    assert model.classifier_weights_.shape == (4, 2)
    assert model.net_.discriminator_.n_logits == 2
    model, _, _ = attributes_model
    assert model.label_type_ == "attributes" and not hasattr(model, "classes_")
    assert list(model.attribute_names_) == ["right", "noisy"]
    assert model.net_.discriminator_.n_logits == 4
    assert model._column("noisy") == model._column(1) == 1


def test_bad_labels_and_arguments_are_clear_errors(classes_model, attributes_model):
    X, y = two_classes(40)
    with pytest.raises(ValueError, match="requires y"):
        ConditionalDLSGAN(**FAST).fit(X)
    with pytest.raises(ValueError, match="at least 2 classes"):
        ConditionalDLSGAN(**FAST).fit(X, np.zeros(40))
    with pytest.raises(ValueError, match="values 0 and 1"):
        ConditionalDLSGAN(**FAST).fit(X, np.c_[y, 2 * y])
    with pytest.raises(ValueError, match="only one value"):
        ConditionalDLSGAN(**FAST).fit(X, np.c_[y, np.ones(40)])
    with pytest.raises(NotFittedError):
        ConditionalDLSGAN(**FAST).edit(X, 1, 1.0)
    model, _, _ = classes_model
    with pytest.raises(ValueError, match="Unknown class 7"):
        model.edit(X, 7, 1.0)
    for bad in (np.nan, np.inf, "a"):
        with pytest.raises(ValueError, match="value"):
            model.edit(X, 1, bad)
    with pytest.raises(ValueError, match="one per row"):
        model.edit(X, 1, np.ones(3))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        model.edit_path(X, 1, [])
    with pytest.raises(ValueError, match="features"):
        model.edit(X[:, :3], 1, 1.0)
    model, _, _ = attributes_model
    with pytest.raises(ValueError, match="Unknown attribute 'wrong'"):
        model.edit(X, "wrong", 1.0)
    with pytest.raises(ValueError, match="Unknown attribute 2"):
        model.edit(X, 2, 1.0)
    with pytest.raises(ValueError, match="0 or 1"):
        model.sample(2, attributes={"right": 3})
    warm = ConditionalDLSGAN(**FAST, warm_start=True).fit(X, y)
    with pytest.raises(ValueError, match="not seen in the first fit"):
        warm.fit(X, y + 5)
    with pytest.raises(ValueError, match="classes labels"):
        warm.fit(X, np.c_[y, 1 - y])


# --------------------------------------------------------------------------- detection
def test_far_outliers_score_below_inliers(classes_model):
    model, X, _ = classes_model
    far = np.full((5, 4), 20.0)
    assert np.median(model.score_samples(far)) < np.median(model.score_samples(X))
    assert np.all(model.predict(far) == -1)


# --------------------------------------------------------------------------- reproducibility
def test_same_seed_same_model_and_pickles(classes_model, tmp_path):
    model, X, y = classes_model
    again = ConditionalDLSGAN(**FAST).fit(X, y)
    np.testing.assert_array_equal(again.edit(X, 1, 1.0), model.edit(X, 1, 1.0))
    np.testing.assert_array_equal(again.score_samples(X), model.score_samples(X))
    other = ConditionalDLSGAN(**{**FAST, "random_state": 1}).fit(X, y)
    assert not np.allclose(other.classifier_weights_, model.classifier_weights_)
    restored = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(restored.edit(X, 0, 0.5), model.edit(X, 0, 0.5))


@pytest.mark.parametrize("fixture", ["classes_model", "attributes_model"])
def test_io_round_trip_edits_identically(fixture, request, tmp_path):
    model, X, _ = request.getfixturevalue(fixture)
    path = tmp_path / "model.skood"
    skood.io.save(model, path)
    restored = skood.io.load(path)
    attribute = 1 if fixture == "classes_model" else "noisy"
    np.testing.assert_array_equal(
        restored.edit_path(X, attribute, [-1, 1]), model.edit_path(X, attribute, [-1, 1])
    )
    np.testing.assert_array_equal(restored.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(restored.classifier_weights_, model.classifier_weights_)


def test_shares_dlsgan_networks_and_transforms_scaled_codes(classes_model):
    model, X, _ = classes_model
    assert isinstance(model, DLSGANDetector)
    unscaled = (
        copy.deepcopy(model.net_.discriminator_)
        .double()
        .encode(torch.as_tensor((X[:3] - model.input_mean_) / model.input_scale_))
    )
    np.testing.assert_allclose(
        model.transform(X[:3]), unscaled.detach().numpy() * model.latent_scale_, rtol=1e-6
    )
