"""The log-determinant of InvGAN's Riemannian metric, batched with ``torch.func``.

Method reference: S. Ren, D. Li, Z. Zhou and P. Li, "Estimate the Implicit Likelihoods of GANs
with Application to Anomaly Detection", WWW 2020 (Eq. 4).
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn
from torch.func import jacfwd, jacrev, vmap

__all__ = ["metric_log_det"]

# Eigenvalue floor of the metric (spec: avoids log 0 should a metric be numerically singular).
_EIGENVALUE_FLOOR = 1e-12
# Numbers in one chunk of Jacobians (rows x outputs x latent), bounding scoring memory.
_JACOBIAN_BUDGET = 2**24
# Forward-mode AD levels are numbered process-wide, not per thread: two threads inside jacfwd at
# once enter and exit each other's levels and fail. Reverse mode (jacrev), which is thread-safe,
# is several times slower for InvGAN's shapes (latent codes narrower than the outputs) and
# rounds differently, so the forward-mode sections take turns instead.
_FORWARD_AD_LOCK = threading.Lock()
_forward_ad_ready = False


def _prepare_forward_ad() -> None:
    """Load PyTorch's forward-mode decompositions once, without their deprecation warning.

    The first dual tensor of a process imports them, and the import compiles them with
    ``torch.jit.script``, which warns (a DeprecationWarning or FutureWarning, by version) in
    the user's first ``score_samples``; under ``-W error`` that warning would be an error.
    Called with ``_FORWARD_AD_LOCK`` held.
    """
    global _forward_ad_ready
    if _forward_ad_ready:
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is")
        from torch.autograd import forward_ad

        # What the first dual tensor would call; absent from a PyTorch that loads nothing.
        load = getattr(forward_ad, "_maybe_load_decompositions", None)
        if load is not None:
            load()
    _forward_ad_ready = True


def _log_det_positive_definite(metric: torch.Tensor) -> torch.Tensor:
    """``log det`` of a batch of symmetric positive-definite matrices, as the sum of the logs
    of their eigenvalues (the paper's form, which neither overflows nor underflows)."""
    return torch.linalg.eigvalsh(metric).clamp_min(_EIGENVALUE_FLOOR).log().sum(-1)


def metric_log_det(
    z: torch.Tensor,
    functions: Sequence[nn.Module | Callable[[torch.Tensor], torch.Tensor]],
    *,
    mode: str = "forward",
    chunk_size: int | None = None,
) -> torch.Tensor:
    """``log det(sum_f J_f(z)^T J_f(z))`` for every row of ``z``, batched with ``torch.func``.

    InvGAN's metric is ``M(z) = J_g^T J_g + J_sigma^T J_sigma``, which is ``J^T J`` for the
    Jacobian ``J`` of the concatenation ``[g(z), sigma(z)]``: one ``vmap`` of one Jacobian
    transform gives both. ``M`` is formed and decomposed in float64.

    Parameters
    ----------
    z : torch.Tensor of shape (n, d)
        Latent codes.
    functions : sequence of callables
        Each maps a batch ``(m, d)`` to ``(m, D_f)`` row by row (modules in eval mode: a
        normalisation layer must use its running statistics).
    mode : {"forward", "reverse"}, default="forward"
        ``"forward"`` (``jacfwd``: ``d`` Jacobian-vector products) is the fast choice when
        ``d`` is smaller than the total output width, as for a generator; ``"reverse"``
        (``jacrev``: one vector-Jacobian product per output) is kept for comparison. Threads
        take turns in forward mode, whose AD levels are shared by the whole process.
    chunk_size : int, optional
        Rows whose Jacobians are held in memory at once; by default about 16 million numbers.

    Returns
    -------
    log_det : torch.Tensor of shape (n,), float64
        Differentiable with respect to the networks' parameters under grad mode, so that it
        then holds every chunk's graph; call it under ``torch.no_grad()`` (as scoring does)
        to keep memory bounded by ``chunk_size``.
    """
    if mode not in ("forward", "reverse"):
        raise ValueError(f"mode must be 'forward' or 'reverse', got {mode!r}.")
    functions = list(functions)

    def stacked(code: torch.Tensor) -> torch.Tensor:
        row = code.unsqueeze(0)
        return torch.cat([function(row)[0] for function in functions])

    transform = jacfwd if mode == "forward" else jacrev
    batched = vmap(transform(stacked))
    n_rows, latent_dim = z.shape
    if chunk_size is None:
        width = sum(int(function(z[:1]).shape[1]) for function in functions)
        chunk_size = max(1, _JACOBIAN_BUDGET // (width * latent_dim))
        if mode == "reverse":
            # Reverse mode keeps one backward pass per output of every row of a chunk alive.
            chunk_size = max(1, chunk_size // width)
    pieces = []
    for start in range(0, n_rows, chunk_size):
        if mode == "forward":
            with _FORWARD_AD_LOCK:
                _prepare_forward_ad()
                jacobian = batched(z[start : start + chunk_size])
        else:
            jacobian = batched(z[start : start + chunk_size])
        jacobian = jacobian.double()  # (m, D_total, d)
        pieces.append(_log_det_positive_definite(jacobian.mT @ jacobian))
    if not pieces:
        return torch.zeros(0, dtype=torch.float64, device=z.device)
    return torch.cat(pieces)
