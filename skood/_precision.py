"""Which training steps run under bfloat16 autocast (``mixed_precision``)."""

from __future__ import annotations

import functools

import torch

__all__ = ["cpu_has_native_bfloat16", "resolve_mixed_precision"]


@functools.cache
def cpu_has_native_bfloat16() -> bool:
    """Whether this processor does bfloat16 arithmetic natively (AVX512-BF16 or AMX).

    Elsewhere oneDNN emulates bfloat16, and autocast makes the CPU step slower, not faster.
    """
    try:
        return bool(torch.backends.mkldnn.is_available()) and bool(
            torch.ops.mkldnn._is_mkldnn_bf16_supported()
        )
    except (AttributeError, RuntimeError):  # builds without oneDNN or without the query
        return False


def resolve_mixed_precision(
    setting: bool | str, device: torch.device | str, *, images: bool
) -> bool:
    """The ``mixed_precision`` a net trains with: ``setting``, with ``"auto"`` resolved.

    ``"auto"`` is bfloat16 for image (convolutional) networks on CUDA and on processors with
    native bfloat16 arithmetic; float32 for tables, whose steps are dispatch-bound matrix
    products too small to gain and whose scores would lose precision.
    """
    if setting != "auto":
        return bool(setting)
    if not images:
        return False
    device_type = torch.device(device).type
    return device_type == "cuda" or (device_type == "cpu" and cpu_has_native_bfloat16())
