"""Progress displays of long work: a bar per training epoch, passes over rows by batch, stages.

``verbose >= 2`` turns them on (``verbose >= 1`` keeps skorch's table of every epoch and adds
the stage lines of multi-stage fits). Two ways of showing progress, chosen per stream:

* on a terminal, with tqdm (a dependency of skorch), a bar that redraws in place: for training
  :class:`TrainingProgress`, skorch's :class:`~skorch.callbacks.ProgressBar` extended with the
  rows per second, the current losses and the time the whole training call has left; for
  scoring, one bar over the rows;
* anywhere else (a log file, a CI log, a pipe, a notebook's captured stream), or without tqdm,
  whole lines: one after the first batch, then at most one every :data:`LOG_INTERVAL` seconds,
  and a summary when the work ends. No carriage returns, and a bounded number of lines however
  many batches run.

Nothing here touches a tensor or a random stream: losses are read from the skorch history
(Python floats skorch already took off the device) and row counts from batch shapes, so
progress changes nothing that is computed and adds no device synchronisation.
"""

from __future__ import annotations

import math
import sys
import time

from skorch.callbacks import ProgressBar
from skorch.dataset import get_len

try:
    import tqdm as _tqdm
except ImportError:  # pragma: no cover - skorch depends on tqdm; the lines need nothing
    _tqdm = None

__all__ = [
    "LOG_INTERVAL",
    "TERMINAL_INTERVAL",
    "RowProgress",
    "TrainingProgress",
    "epochs_text",
    "format_count",
    "format_duration",
    "is_terminal",
    "row_progress",
]

#: Seconds between two redraws of a bar on a terminal.
TERMINAL_INTERVAL = 0.5
#: Seconds between two progress lines written to a stream that is not a terminal.
LOG_INTERVAL = 5.0


def is_terminal(stream) -> bool:
    """Whether ``stream`` is an interactive terminal (where a bar may redraw in place)."""
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError, OSError):  # no isatty, or a closed stream
        return False


def format_duration(seconds: float) -> str:
    """``"00:42"``, ``"12:05"``, ``"1:02:03"``; ``"?"`` for an unknown duration."""
    if not math.isfinite(seconds) or seconds < 0:
        return "?"
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


def format_count(number: float) -> str:
    """A count or rate in three significant digits: ``"950"``, ``"3.21k"``, ``"1.50M"``."""
    if not math.isfinite(number):
        return "?"
    for factor, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(number) >= factor:
            return f"{number / factor:.3g}{suffix}"
    return f"{number:.3g}"


# The clock of every display (a name of this module, so that tests can drive it).
_clock = time.monotonic


def epochs_text(n_epochs: int) -> str:
    """``"1 epoch"``, ``"30 epochs"``: the length of a stage, in its line."""
    return f"{n_epochs} epoch" + ("" if n_epochs == 1 else "s")


def _rate(rows: float, seconds: float) -> float:
    return rows / seconds if seconds > 0 else math.inf


if _tqdm is not None:

    class _Bar(_tqdm.tqdm):
        # No monitor thread: a bar lives for one epoch or one pass, and skood adds no threads.
        monitor_interval = 0


def _terminal_bar(total: int | None, desc: str, stream):
    return _Bar(
        total=total,
        desc=desc,
        unit=" rows",
        unit_scale=True,
        leave=False,  # erased when done: what stays is skorch's table and the summary line
        file=stream,
        mininterval=TERMINAL_INTERVAL,
        miniters=1,
        dynamic_ncols=True,
    )


class _Lines:
    """Whole lines to a stream: the first when asked, then at most one per LOG_INTERVAL."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self.last: float | None = None

    def due(self, now: float) -> bool:
        return self.last is None or now - self.last >= LOG_INTERVAL

    def write(self, text: str, now: float) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()
        self.last = now


def _uses_bar(stream) -> bool:
    return _tqdm is not None and is_terminal(stream)


# ---------------------------------------------------------------------- passes over rows
class RowProgress:
    """Progress of one pass over ``total`` rows in batches (scoring, encoding, features).

    A context manager; :meth:`update` after each batch with the rows it held. On a terminal a
    bar with the rows per second and the time left; elsewhere a line after the first batch, at
    most one per :data:`LOG_INTERVAL` after it, and a summary at the end.
    """

    def __init__(self, total: int, batch_size: int, desc: str, stream=None) -> None:
        self.total = int(total)
        self.n_batches = max(1, math.ceil(self.total / max(1, int(batch_size))))
        self.desc = desc
        self.stream = stream

    def __enter__(self) -> RowProgress:
        stream = sys.stderr if self.stream is None else self.stream
        self._start = self._last = _clock()
        self._rows = self._last_rows = self._batches = 0
        self._bar = _terminal_bar(self.total, self.desc, stream) if _uses_bar(stream) else None
        self._lines = None if self._bar is not None else _Lines(stream)
        return self

    def update(self, rows: int) -> None:
        self._rows += rows
        self._batches += 1
        if self._bar is not None:
            self._bar.update(rows)
            return
        now = _clock()
        if self._lines.due(now):
            elapsed = now - self._start
            rate = _rate(self._rows - self._last_rows, now - self._last)
            left = elapsed / self._rows * (self.total - self._rows) if self._rows else math.nan
            self._lines.write(
                f"{self.desc}: batch {self._batches}/{self.n_batches}, "
                f"{format_count(self._rows)}/{format_count(self.total)} rows | "
                f"{format_count(rate)} rows/s | {format_duration(left)} left",
                now,
            )
            self._last, self._last_rows = now, self._rows

    def __exit__(self, kind, error, traceback) -> None:
        if self._bar is not None:
            self._bar.close()
        elif kind is None and self._batches:
            seconds = _clock() - self._start
            self._lines.write(
                f"{self.desc}: {format_count(self._rows)} rows in {format_duration(seconds)}, "
                f"{format_count(_rate(self._rows, seconds))} rows/s",
                _clock(),
            )
        self._bar = self._lines = None


class _NoProgress:
    def __enter__(self) -> _NoProgress:
        return self

    def update(self, rows: int) -> None:
        pass

    def __exit__(self, kind, error, traceback) -> None:
        pass


_NO_PROGRESS = _NoProgress()


def row_progress(verbose, total: int, batch_size: int, desc: str) -> RowProgress | _NoProgress:
    """A :class:`RowProgress` at ``verbose >= 2`` for more than one batch; else one that shows
    nothing."""
    if verbose >= 2 and total > batch_size:
        return RowProgress(total, batch_size, desc)
    return _NO_PROGRESS


# ---------------------------------------------------------------------- training
class _Run:
    """What :class:`TrainingProgress` tracks during one training call."""

    def __init__(self, stream, keys: list[str], first_epoch: int, last_epoch: int) -> None:
        self.stream = stream
        self.keys = keys
        self.first_epoch = first_epoch
        self.last_epoch = last_epoch
        self.start = self.last_line = _clock()
        self.batches_per_epoch: int | None = None
        self.rows_per_epoch: int | None = None
        self.epoch = first_epoch
        self.epoch_batches = 0
        self.batches = self.rows = self.rows_at_last_line = 0
        self.bar = None
        self.lines = None if _uses_bar(stream) else _Lines(stream)

    @property
    def total_batches(self) -> int | None:
        if self.batches_per_epoch is None:
            return None
        return (self.last_epoch - self.first_epoch + 1) * self.batches_per_epoch

    def seconds_left(self, now: float, batches_left: int | None) -> float:
        if batches_left is None or not self.batches:
            return math.nan
        return (now - self.start) / self.batches * max(0, batches_left)


class TrainingProgress(ProgressBar):
    """skorch's :class:`~skorch.callbacks.ProgressBar` for skood's nets, at ``verbose >= 2``.

    A default callback of :class:`~skood._training.MultiModuleNet`, placed before the epoch
    table (``PrintLog``) so that a bar is erased before the epoch's row is printed. It shows
    nothing while the net's ``verbose`` is below ``min_verbose``, so that a warm-started fit
    that changes ``verbose`` turns it on or off.

    On a terminal (with tqdm): a bar per epoch, ``epoch e/E``, over the epoch's rows, with the
    rows per second, the epoch's time left, the current batch losses and the time the whole
    training call has left. Elsewhere: a line after the first batch, then at most one per
    :data:`LOG_INTERVAL` seconds, with the epoch and batch, the losses, the rows per second and
    the time left in the epoch and in the call. Either way, a summary line when training ends.

    Parameters
    ----------
    batches_per_epoch : int or "auto", default="auto"
        As skorch's; ``"auto"`` takes the number of the net's batch iterator.
    detect_notebook : bool, default=False
        Kept from skorch's signature, unused: a notebook's stream is not a terminal, so lines
        are written there.
    postfix_keys : list of str or None, default=None
        Batch-level history keys shown; None: ``train_loss`` and the net's ``loss_names``.
    label : str or None, default=None
        What trains, in brackets before each bar and line (detectors set their class name,
        ``DMRDetector classifier`` and so on, through ``callbacks__progress__label``).
    stream : file-like or None, default=None
        Where to write; None: ``sys.stderr`` at the start of each training call.
    min_verbose : int, default=2
        The net's ``verbose`` from which progress is shown.
    """

    def __init__(
        self,
        batches_per_epoch="auto",
        detect_notebook=False,
        postfix_keys=None,
        label=None,
        stream=None,
        min_verbose=2,
    ):
        super().__init__(
            batches_per_epoch=batches_per_epoch,
            detect_notebook=detect_notebook,
            postfix_keys=postfix_keys,
        )
        # skorch's default keys (train_loss, valid_loss) are replaced by the net's losses.
        self.postfix_keys = postfix_keys
        self.label = label
        self.stream = stream
        self.min_verbose = min_verbose

    # ------------------------------------------------------------------ callback hooks
    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.close()
        if (net.verbose or 0) < self.min_verbose:
            return
        stream = sys.stderr if self.stream is None else self.stream
        keys = list(self.postfix_keys or ["train_loss", *getattr(net, "loss_names", ())])
        done = len(net.history)
        self._run = _Run(stream, keys, done + 1, done + int(net.max_epochs))

    def on_epoch_begin(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        run = getattr(self, "_run", None)
        if run is None:
            return
        if run.batches_per_epoch is None:
            run.batches_per_epoch = self._batch_count(net, dataset_train)
            run.rows_per_epoch = get_len(dataset_train) if dataset_train is not None else None
        run.epoch = len(net.history)
        run.epoch_batches = 0
        if run.lines is None:
            desc = f"{self._prefix()}epoch {run.epoch}/{run.last_epoch}"
            run.bar = _terminal_bar(run.rows_per_epoch, desc, run.stream)

    def on_batch_end(self, net, batch=None, training=False, **kwargs):
        run = getattr(self, "_run", None)
        if run is None or not training:
            return
        rows = get_len(batch[0]) if isinstance(batch, (tuple, list)) else get_len(batch)
        run.batches += 1
        run.epoch_batches += 1
        run.rows += rows
        now = _clock()
        if run.bar is not None:
            bar = run.bar
            # The fields only when this update redraws the bar (tqdm's own test, on its clock):
            # the losses shown are then the current batch's, and formatted once per redraw.
            if time.time() - bar.last_print_t >= bar.mininterval:
                left = self._batches_left(run)
                fields = self._losses(net, run)
                fields.append(f"fit {format_duration(run.seconds_left(now, left))} left")
                bar.set_postfix_str(", ".join(fields), refresh=False)
            bar.update(rows)
        elif run.lines.due(now):
            run.lines.write(self._line(net, run, now), now)
            run.last_line, run.rows_at_last_line = now, run.rows

    def on_epoch_end(self, net, dataset_train=None, dataset_valid=None, **kwargs):
        run = getattr(self, "_run", None)
        if run is not None and run.bar is not None:
            run.bar.close()
            run.bar = None

    def on_train_end(self, net, X=None, y=None, **kwargs):
        run = getattr(self, "_run", None)
        if run is None:
            return
        self.close()
        if run.batches:
            seconds = _clock() - run.start
            epochs = len(net.history) - run.first_epoch + 1
            if epochs == 1:
                span = f"epoch {run.first_epoch}"
            else:
                span = f"epochs {run.first_epoch}-{run.first_epoch + epochs - 1}"
            rows, rate = format_count(run.rows), format_count(_rate(run.rows, seconds))
            run.stream.write(
                f"{self._prefix()}trained {span}: {run.batches} batches, {rows} rows in "
                f"{format_duration(seconds)}, {rate} rows/s\n"
            )
            run.stream.flush()

    def close(self) -> None:
        """Close the bar and forget the call (training ended, or failed)."""
        run = self.__dict__.pop("_run", None)
        if run is not None and run.bar is not None:
            run.bar.close()

    # ------------------------------------------------------------------ text
    def _prefix(self) -> str:
        return f"[{self.label}] " if self.label else ""

    def _batch_count(self, net, dataset_train) -> int | None:
        if isinstance(self.batches_per_epoch, int):
            return self.batches_per_epoch
        batches = getattr(net, "_train_batches", None)
        if batches is not None:
            return len(batches)
        if dataset_train is None:
            return None
        return self._get_batches_per_epoch(net, dataset_train, None)

    @staticmethod
    def _batches_left(run: _Run) -> int | None:
        total = run.total_batches
        return None if total is None else total - run.batches

    @staticmethod
    def _losses(net, run: _Run) -> list[str]:
        fields = []
        for key in run.keys:
            try:
                value = net.history[-1, "batches", -1, key]
            except KeyError:
                continue
            try:
                fields.append(f"{key}={float(value):.4g}")
            except (TypeError, ValueError):
                fields.append(f"{key}={value}")
        return fields

    def _line(self, net, run: _Run, now: float) -> str:
        per_epoch = run.batches_per_epoch
        batch = f"batch {run.epoch_batches}" + ("" if per_epoch is None else f"/{per_epoch}")
        rate = _rate(run.rows - run.rows_at_last_line, now - run.last_line)
        epoch_left = None if per_epoch is None else per_epoch - run.epoch_batches
        epoch_eta = format_duration(run.seconds_left(now, epoch_left))
        fit_eta = format_duration(run.seconds_left(now, self._batches_left(run)))
        losses = ", ".join(self._losses(net, run))
        return (
            f"{self._prefix()}epoch {run.epoch}/{run.last_epoch}, {batch}: {losses} | "
            f"{format_count(rate)} rows/s | epoch {epoch_eta} left, fit {fit_eta} left"
        )

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_run", None)
        return state
