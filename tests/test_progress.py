"""Progress of long work (skood._progress): per-batch training progress at verbose=2 for every
detector, a bar on terminals and bounded plain lines elsewhere, scoring progress by batch,
stage lines of multi-stage fits, and scores that progress leaves bitwise unchanged."""

import io
import re
import sys
from unittest import mock

import numpy as np
import pytest
from _detectors import SUPERVISED, build
from skorch.callbacks import PrintLog

import skood._progress as progress

# Tiny networks: one thread (tests/conftest.py).
pytestmark = pytest.mark.usefixtures("one_thread")

# A line of training progress written to a stream that is not a terminal.
TRAINING_LINE = re.compile(
    r"^\[[\w ]+\] epoch \d+/\d+, batch \d+/\d+: train_loss=\S+.* \| \S+ rows/s \| "
    r"epoch (\d\d:\d\d|\?) left, fit (\d\d:\d\d|\?) left$"
)
# One loss of each detector's step beside train_loss, shown with it.
OWN_LOSS = {
    "dlsgan": "generator_loss",
    "autoencoder": "train_loss",
    "flow": "nll",
    "invgan": "inference_loss",
    "posthoc": "train_accuracy",
    "conditional": "generator_loss",
    "dmr": "train_accuracy",  # its classifier's; the rejection network has train_loss only
}


class _Terminal(io.StringIO):
    """A stream that says it is an interactive terminal."""

    def isatty(self):
        return True


@pytest.fixture(scope="module")
def data():
    rng = np.random.RandomState(0)
    X = np.vstack([rng.normal(-2, 1, size=(60, 3)), rng.normal(2, 1, size=(60, 3))])
    return X, np.r_[np.zeros(60), np.ones(60)]


def _fit(name, data, **params):
    X, y = data
    detector = build(name, batch_size=32, **params)
    return detector.fit(X, y) if name in SUPERVISED else detector.fit(X)


def _terminal(monkeypatch) -> _Terminal:
    """stderr as an interactive terminal, bars redrawn at every batch (set in the test itself:
    pytest's capture sets stderr again after the fixtures)."""
    stream = _Terminal()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(progress, "TERMINAL_INTERVAL", 0.0)
    return stream


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("name", list(OWN_LOSS))
def test_verbose_2_shows_training_progress_and_does_not_change_scores(name, data, capsys):
    quiet = _fit(name, data, verbose=0)
    assert capsys.readouterr().err == ""
    shown = _fit(name, data, verbose=2)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if TRAINING_LINE.match(line)]
    assert lines, err
    assert any(f"{OWN_LOSS[name]}=" in line for line in lines), err
    assert re.search(r"trained epochs 1-2: \d+ batches, \S+ rows in \d\d:\d\d", err), err
    # Same seed, same scores, bit for bit: progress touches neither a tensor nor a stream.
    X, _ = data
    np.testing.assert_array_equal(shown.score_samples(X), quiet.score_samples(X))


def test_verbose_1_prints_the_table_without_progress(data, capsys):
    _fit("dlsgan", data, verbose=1)
    captured = capsys.readouterr()
    assert "train_loss" in captured.out  # skorch's epoch table, as before
    assert captured.err == ""


def test_verbose_0_formats_no_epoch_table(data, capsys):
    # skorch's PrintLog formats every epoch's row and drops it at verbose=0; that costs about
    # a step per epoch on a small table.
    with mock.patch.object(PrintLog, "table", side_effect=AssertionError("formatted")):
        _fit("dlsgan", data, verbose=0)
    assert capsys.readouterr().out == ""


def test_a_warm_start_that_turns_verbose_on_prints_the_table_header(data, capsys):
    X, _ = data
    detector = build("dlsgan", batch_size=32, warm_start=True, verbose=0).fit(X)
    assert capsys.readouterr().out == ""
    detector.set_params(verbose=1).fit(X)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "epoch" and "train_loss" in lines[0]
    assert [line.split()[0] for line in lines[2:]] == ["3", "4"]


def test_terminal_shows_a_bar_with_rate_losses_and_time_left(data, monkeypatch):
    terminal = _terminal(monkeypatch)
    _fit("flow", data, verbose=2)
    text = terminal.getvalue()
    assert "\r" in text  # redrawn in place
    assert re.search(r"\[ApproximateMassFlowDetector\] epoch 2/2: +\d+%\|", text), text
    assert re.search(r"rows/s, train_loss=\S+, nll=\S+, .*fit \d\d:\d\d left\]", text), text


def test_non_terminal_output_stays_bounded_for_many_batches(data, capsys, monkeypatch):
    # 300 batches (3 epochs of 100) on a clock that advances 0.1 s per reading: about 30 s
    # of "training", which at one line per LOG_INTERVAL (5 s) is a handful of lines.
    now = [0.0]

    def clock():
        now[0] += 0.1
        return now[0]

    monkeypatch.setattr(progress, "_clock", clock)
    X, y = data
    build("posthoc", verbose=2, max_epochs=3, batch_size=1, inference_batch_size=10**6).fit(
        X[:100], y[:100]
    )
    err = capsys.readouterr().err
    assert "\r" not in err
    lines = err.splitlines()
    assert sum(bool(TRAINING_LINE.match(line)) for line in lines) >= 3, err  # a line per 5 s
    assert len(lines) <= 30, err
    assert "trained epochs 1-3: 300 batches, 300 rows in 00:3" in err


def test_without_tqdm_a_terminal_gets_plain_lines(data, monkeypatch):
    terminal = _terminal(monkeypatch)
    monkeypatch.setattr(progress, "_tqdm", None)
    _fit("dlsgan", data, verbose=2)
    text = terminal.getvalue()
    assert "\r" not in text
    assert any(TRAINING_LINE.match(line) for line in text.splitlines()), text


def test_a_warm_start_turns_progress_on(data, capsys):
    X, _ = data
    detector = build("dlsgan", batch_size=32, warm_start=True, verbose=0).fit(X)
    capsys.readouterr()
    detector.set_params(verbose=2).fit(X)
    err = capsys.readouterr().err
    assert "[DLSGANDetector] epoch 3/4, batch 1/4" in err
    assert "trained epochs 3-4" in err


# --------------------------------------------------------------------------- scoring
def test_scoring_progress_by_batch(data, capsys):
    X, _ = data
    detector = build("dlsgan", batch_size=32, inference_batch_size=50).fit(X)
    capsys.readouterr()
    detector.score_samples(X)
    assert capsys.readouterr().err == ""  # verbose=0
    detector.set_params(verbose=2)
    detector.predict(X)  # through decision_function and score_samples
    err = capsys.readouterr().err
    assert "\r" not in err
    assert re.search(r"^\[DLSGANDetector\] scoring: batch 1/3, 50/120 rows \| \S+ rows/s \| "
                     r"\d\d:\d\d left$", err, flags=re.MULTILINE), err  # fmt: skip
    assert re.search(r"^\[DLSGANDetector\] scoring: 120 rows in \d\d:\d\d", err, re.MULTILINE)
    # One batch: nothing to follow.
    detector.set_params(inference_batch_size=120).score_samples(X)
    assert capsys.readouterr().err == ""


def test_scoring_bar_on_a_terminal(data, monkeypatch):
    X, _ = data
    detector = build("dlsgan", batch_size=32, inference_batch_size=50).fit(X)
    terminal = _terminal(monkeypatch)
    detector.set_params(verbose=2).score_samples(X)
    assert re.search(r"\r\[DLSGANDetector\] scoring: +\d+%\|.*\| 50\.0/120 ", terminal.getvalue())


# --------------------------------------------------------------------------- stages
def _stages(text: str) -> list[str]:
    return re.findall(r"^\[(\w+)\] stage (\d/\d): ", text, flags=re.MULTILINE)


def test_dmr_names_its_three_stages(data, capsys):
    _fit("dmr", data, verbose=1)
    out = capsys.readouterr().out
    assert _stages(out) == [("DMRDetector", "1/3"), ("DMRDetector", "2/3"), ("DMRDetector", "3/3")]
    assert "stage 1/3: classifier (2 epochs)" in out
    assert "stage 2/3: generator (DLSGANDetector, fitted on X)" in out
    assert "stage 3/3: 120 synthetic outliers, rejection network (2 epochs)" in out
    _fit("dmr", data, verbose=0)
    assert capsys.readouterr().out == ""


def test_invgan_names_its_variance_refit(data, capsys):
    _fit("invgan", data, verbose=2, kmeans_on="encoded")
    captured = capsys.readouterr()
    assert _stages(captured.out) == [("InvGANDetector", "1/2"), ("InvGANDetector", "2/2")]
    assert "stage 2/2: variance refit on the training codes (2 epochs)" in captured.out
    assert "[InvGANDetector variance refit] trained epochs 1-2" in captured.err
    # One stage only: no stage lines.
    _fit("invgan", data, verbose=1)
    assert _stages(capsys.readouterr().out) == []
