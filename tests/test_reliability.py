"""Reliability across every detector: scoring from threads, degenerate statistics, blow-ups with
finite losses, Ctrl-C during fit, the global random states, columns near the float64 limit,
parameter and label validation, the fitted latent width, image pixel ranges, warnings under
``-W error`` and the demo's argument errors."""

import subprocess
import sys
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
from _detectors import DETECTORS, FACTORIES, FAST, LATENT, SUPERVISED, fit
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.utils.validation import check_is_fitted

import skood.__main__ as cli
from skood import (
    DLSGANDetector,
    PostHocDetector,
    TrainingDivergedError,
)
from skood._training import MultiModuleNet

# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def data():
    """200 rows x 6 features in two classes, and the labels."""
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(-2.0, 1.0, size=(100, 6)), rng.normal(2.0, 1.0, size=(100, 6))])
    return X, np.repeat([0, 1], 100)


def assert_unfitted(detector) -> None:
    assert not [key for key in vars(detector) if key.endswith("_") and not key.startswith("__")]
    with pytest.raises(NotFittedError):
        check_is_fitted(detector)


# --------------------------------------------------------------------------- threads
@pytest.mark.parametrize("name", DETECTORS)
def test_scores_are_identical_from_several_threads(name, data):
    """InvGAN's forward-mode Jacobians use process-wide AD levels; several threads scoring
    (here on two separate instances) must still give the sequential results."""
    X, y = data
    detectors = [fit(name, X, y, random_state=seed) for seed in (0, 1)]
    expected = [detector.score_samples(X) for detector in detectors]
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: detectors[i % 2].score_samples(X), range(16)))
    for i, scores in enumerate(results):
        np.testing.assert_array_equal(scores, expected[i % 2])


# --------------------------------------------------------------------------- degenerate statistics
@pytest.mark.filterwarnings("ignore:The number of unique classes is greater than 50%")
def test_mahalanobis_with_one_sample_per_class_warns_and_still_ranks(data):
    X, _ = data
    detector = PostHocDetector(score_type="mahalanobis", **FAST)
    with pytest.warns(UserWarning, match="covariance"):
        detector.fit(X, np.arange(len(X)))
    far = X.mean(axis=0) + 50 * X.std(axis=0)
    scores = detector.score_samples(np.vstack([X[:20] + 0.1, far]))
    assert np.all(np.isfinite(scores))
    assert scores[-1] < scores[:-1].min()
    assert detector.predict(far[None])[0] == -1


def test_mahalanobis_with_several_samples_per_class_does_not_warn(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        PostHocDetector(score_type="mahalanobis", **FAST).fit(X, y)


# --------------------------------------------------------------------------- blow-ups
# Learning rates at which each detector's training blows up while its losses stay finite (or,
# for the flow and the autoencoder at the highest rates, become inf).
BLOW_UPS = {
    "dlsgan": {"lr": 100.0, "max_epochs": 3},
    "autoencoder": {"lr": 1e3},
    "flow": {"lr": 1e8, "max_grad_norm": None},
    "invgan": {"lr": 1e6},
    "posthoc": {"lr": 1e6},
    "dmr": {"lr": 1e3},
    "conditional": {"lr": 100.0, "max_epochs": 3},
}


@pytest.mark.parametrize("name", DETECTORS)
def test_a_blown_up_fit_raises_or_warns_and_says_to_lower_lr(name, data):
    X, y = data
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            fit(name, X, y, **BLOW_UPS[name])
        except TrainingDivergedError as error:
            assert "lr" in str(error)
            return
    messages = [str(w.message) for w in caught if issubclass(w.category, ConvergenceWarning)]
    assert any("lr" in message for message in messages), messages


@pytest.mark.parametrize("name", DETECTORS)
def test_normal_fits_report_no_divergence(name, data):
    """The blow-up checks stay quiet over longer fits at the default learning rates."""
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        detector = fit(name, X, y, max_epochs=15)
    assert np.all(np.isfinite(detector.score_samples(X)))


# --------------------------------------------------------------------------- Ctrl-C
# (detector, the skorch net whose training is interrupted, parameters of a long fit)
INTERRUPTIONS = [
    ("dlsgan", "_DLSGANNet", {"max_epochs": 2000}),
    ("autoencoder", "_AutoencoderNet", {"max_epochs": 2000}),
    ("flow", "_FlowNet", {"max_epochs": 2000}),
    ("invgan", "_InvGANNet", {"max_epochs": 2000}),
    ("posthoc", "_ClassifierNet", {"max_epochs": 2000}),
    ("dmr", "_ClassifierNet", {"classifier_epochs": 2000}),
    ("dmr", "_RejectionNet", {"max_epochs": 2000}),
]


def interrupt_training(monkeypatch, net_name: str, after: int = 3) -> list:
    """Make the ``after``-th training step of nets of class ``net_name`` raise Ctrl-C."""
    steps = []
    record_losses = MultiModuleNet.record_losses

    def interrupted(net, losses):
        if type(net).__name__ == net_name:
            steps.append(net)
            if len(steps) == after:
                raise KeyboardInterrupt
        return record_losses(net, losses)

    monkeypatch.setattr(MultiModuleNet, "record_losses", interrupted)
    return steps


@pytest.mark.parametrize(
    ("name", "net_name", "params"), INTERRUPTIONS, ids=[f"{n}-{c}" for n, c, _ in INTERRUPTIONS]
)
def test_ctrl_c_during_fit_reaches_the_caller_and_leaves_the_detector_unfitted(
    name, net_name, params, data, monkeypatch
):
    X, y = data
    detector = FACTORIES[name](**params)
    steps = interrupt_training(monkeypatch, net_name)
    with pytest.raises(KeyboardInterrupt):
        detector.fit(X, y) if name in SUPERVISED else detector.fit(X)
    assert len(steps) == 3
    assert_unfitted(detector)


def test_ctrl_c_during_a_warm_started_fit_leaves_the_detector_unfitted(data, monkeypatch):
    X, _ = data
    detector = DLSGANDetector(warm_start=True, **LATENT).fit(X)
    detector.set_params(max_epochs=2000)
    interrupt_training(monkeypatch, "_DLSGANNet")
    with pytest.raises(KeyboardInterrupt):
        detector.fit(X)
    assert_unfitted(detector)


# --------------------------------------------------------------------------- global random state
# Every detector's default configuration: check_global_random_state (tests/test_common.py).
RANDOM_STATE_CASES = [
    ("dlsgan", {"equalized_lr": False}),
    ("autoencoder", {"equalized_lr": False}),
]


@pytest.mark.parametrize(
    ("name", "params"), RANDOM_STATE_CASES, ids=[f"{n}-{p}" for n, p in RANDOM_STATE_CASES]
)
def test_fit_and_score_leave_the_global_random_states_alone(name, params, data):
    X, y = data
    torch_state = torch.get_rng_state()
    numpy_state = np.random.get_state()  # noqa: NPY002 (the legacy global state is the point)
    fit(name, X, y, **params).score_samples(X)
    assert torch.equal(torch.get_rng_state(), torch_state)
    numpy_after = np.random.get_state()  # noqa: NPY002
    np.testing.assert_array_equal(numpy_after[1], numpy_state[1])
    assert numpy_after[2:] == numpy_state[2:]


# --------------------------------------------------------------------------- extreme columns
@pytest.mark.parametrize("name", DETECTORS)
def test_a_column_beyond_1e154_keeps_a_finite_scale_and_counts(name, data):
    """Its squares overflow float64: the standard deviation must be computed stably."""
    X, y = data
    X = X.copy()
    X[:, 2] *= 1e154
    detector = fit(name, X, y)
    assert np.all(np.isfinite(detector.input_scale_))
    np.testing.assert_allclose(detector.input_scale_[2], np.std(X[:, 2] / 1e154) * 1e154)
    np.testing.assert_allclose(detector.input_mean_[2], np.mean(X[:, 2] / 1e154) * 1e154)
    scores = detector.score_samples(X)
    assert np.all(np.isfinite(scores))
    moved = X.copy()
    moved[:, 2] += 5 * detector.input_scale_[2]
    assert not np.allclose(detector.score_samples(moved), scores)
    if hasattr(detector, "sample"):
        assert np.all(np.isfinite(detector.sample(5, random_state=0)))


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize("name", sorted(SUPERVISED))
def test_labels_mixing_strings_and_numbers_are_a_clear_error(name, data):
    X, _ = data
    mixed = np.array(["a", 1] * 100, dtype=object)
    with pytest.raises(ValueError, match="strings and numbers"):
        FACTORIES[name]().fit(X, mixed)
    fitted = PostHocDetector(**FAST).fit(X, np.array(["a", "b"] * 100))
    with pytest.raises(ValueError, match="strings and numbers"):
        fitted.fit_statistics(X, mixed)


@pytest.mark.parametrize("name", DETECTORS)
def test_non_integer_hidden_widths_are_rejected(name, data):
    X, y = data
    with pytest.raises(ValueError, match="hidden_dims"):
        fit(name, X, y, hidden_dims=(2.5,))


@pytest.mark.parametrize("name", ["dlsgan", "autoencoder"])
def test_latent_methods_use_the_fitted_latent_width(name, data):
    X, y = data
    detector = fit(name, X, y).set_params(latent_dim=8)
    codes = detector.transform(X[:5])
    assert codes.shape == (5, 4)
    assert len(detector.get_feature_names_out()) == codes.shape[1]
    assert detector.inverse_transform(codes).shape == (5, X.shape[1])
    assert detector.sample(3, random_state=0).shape == (3, X.shape[1])


IMAGES = {"input_shape": (1, 8, 8), "max_epochs": 1}


@pytest.mark.parametrize("name", ["dlsgan", "autoencoder", "invgan"])
def test_raw_pixels_on_an_image_detector_warn(name, images):
    raw = (images + 1.0) * 127.5
    with pytest.warns(UserWarning, match=r"far outside \[-1, 1\]"):
        FACTORIES[name](**IMAGES).fit(raw)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*far outside", category=UserWarning)
        FACTORIES[name](**IMAGES).fit(images)


def test_invgan_fits_and_scores_under_warnings_as_errors():
    """The first dual tensor of a process makes PyTorch compile decompositions with
    torch.jit.script, which warns: a fresh interpreter shows whether the warning escapes."""
    code = (
        "import numpy as np; from skood import InvGANDetector; "
        "X = np.random.RandomState(0).normal(size=(64, 4)); "
        "d = InvGANDetector(latent_dim=2, n_centres=4, n_kmeans_samples=100, max_epochs=1, "
        "hidden_dims=(8,), random_state=0, device='cpu').fit(X); d.score_samples(X)"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr[-2000:]


# --------------------------------------------------------------------------- the demo's arguments
# No CUDA at all here, or one index past the last GPU: either way a device that does not exist.
MISSING_GPU = f"cuda:{torch.cuda.device_count()}"


@pytest.mark.parametrize(
    "arguments",
    [
        ["--plot", "{missing}/x.png"],
        ["--plot", "{tmp}/out.txt"],
        ["--plot", "{tmp}"],
        ["--device", MISSING_GPU],
        ["--device", "gpu7"],
    ],
    ids=["missing-folder", "unknown-format", "folder", "missing-gpu", "bad-device"],
)
def test_demo_argument_errors_come_before_any_training(arguments, tmp_path, monkeypatch, capsys):
    pytest.importorskip("matplotlib")

    def train(**kwargs):
        raise AssertionError("the demo trained before checking its arguments")

    monkeypatch.setattr(cli, "run_demo", train)
    paths = {"missing": str(tmp_path / "missing"), "tmp": str(tmp_path)}
    arguments = [argument.format(**paths) for argument in arguments]
    with pytest.raises(SystemExit) as info:
        cli.main(["demo", "--seeds", "1", *arguments])
    assert info.value.code == 2
    error = capsys.readouterr().err
    assert "Traceback" not in error
    lines = error.strip().splitlines()
    assert "error:" in lines[-1] and arguments[0] in lines[-1]
    assert sum("error:" in line for line in lines) == 1


def test_demo_accepts_a_writable_plot_path_and_a_real_device(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    calls = []
    monkeypatch.setattr(cli, "run_demo", lambda **kwargs: calls.append(kwargs))
    path = str(tmp_path / "demo.png")
    assert cli.main(["demo", "--seeds", "1", "--device", "cpu", "--plot", path]) == 0
    assert calls == [{"n_seeds": 1, "device": "cpu", "plot": path}]
