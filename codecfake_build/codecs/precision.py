"""Mixed precision for codec re-synthesis, used only where it is measured to be harmless.

A codec's quantiser picks discrete codes, so a half-precision rounding can flip a code and
change a whole frame: whether autocast is safe is a property of one checkpoint on one device,
not of an architecture.  ``choose_amp`` therefore re-synthesises a few real clips of the job
in float32 and under each candidate autocast dtype, and keeps a dtype only if every output
sample stays within ``tolerance`` (default 1e-3, issue #3) of float32.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

AMP_MODES = ("off", "auto", "bf16", "fp16", "tf32")
#: Reduced-precision modes a codec can run in, fastest first: ``auto`` tries them in this order.
#: tf32 keeps float32 tensors but lets CUDA tensor cores round convolution/matmul inputs to a
#: 10-bit mantissa; without it codecs run strict float32 on a GPU (``Codec._precision``).
REDUCED = ("bf16", "fp16", "tf32")
DEFAULT_TOLERANCE = 1e-3


class AmpCheckError(ValueError):
    """An explicitly requested AMP dtype changed the output by more than the tolerance."""


@dataclass
class AmpDecision:
    """What ``choose_amp`` decided, with the measurements behind it (stored in build records)."""

    requested: str
    chosen: str | None  # "bf16", "fp16", "tf32" or None for strict float32
    tolerance: float
    #: max |amp - fp32| over the calibration clips, per dtype tried.
    max_abs_diff: dict[str, float] = field(default_factory=dict)
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _candidates(requested: str, device: str) -> tuple[str, ...]:
    if requested in REDUCED:
        return (requested,)
    # CPUs without bf16 units run autocast slower than float32 (and have no TF32), so auto stays off there.
    return REDUCED if str(device).startswith("cuda") else ()


def max_abs_diff(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """Largest |a - b| sample over paired clips; inf if a pair differs in shape or is not finite."""
    worst = 0.0
    for x, y in zip(a, b):
        if x.shape != y.shape or not (np.isfinite(x).all() and np.isfinite(y).all()):
            return float("inf")
        if x.size:
            worst = max(worst, float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64)))))
    return worst


def choose_amp(codec: Any, clips: list[np.ndarray], sr: int, requested: str = "auto",
               tolerance: float = DEFAULT_TOLERANCE) -> AmpDecision:
    """Set ``codec.amp`` to the first candidate dtype whose output on ``clips`` (at ``sr``)
    stays within ``tolerance`` of strict float32, or None; return the decision.  An explicit
    ``bf16``/``fp16``/``tf32`` that fails the check raises ``AmpCheckError``; ``auto`` falls back."""
    if requested not in AMP_MODES:
        raise ValueError(f"unknown AMP mode {requested!r}. Fix: use one of {', '.join(AMP_MODES)}")
    codec.amp = None
    if requested == "off":
        return AmpDecision(requested, None, tolerance, reason="off as requested")
    if not codec.supports_amp:
        if requested != "auto":
            raise AmpCheckError(f"{codec.spec} does not run PyTorch, so --amp {requested} cannot apply. "
                                "Fix: use --amp auto or off")
        return AmpDecision(requested, None, tolerance, reason=f"{codec.spec} does not run PyTorch")
    candidates = _candidates(requested, codec.device)
    if not candidates:
        return AmpDecision(requested, None, tolerance, reason=f"auto uses AMP only on CUDA, not {codec.device}")
    if not clips:
        raise ValueError(f"{codec.spec}: no clips to check AMP on. Fix: pass at least one readable clip")
    reference = codec.resynthesize(clips, sr)
    decision = AmpDecision(requested, None, tolerance)
    for dtype in candidates:
        codec.amp = dtype
        try:
            diff = max_abs_diff(codec.resynthesize(clips, sr), reference)
        except RuntimeError as exc:  # an op without a half-precision kernel on this device
            diff = float("inf")
            decision.reason = f"{dtype}: {str(exc).splitlines()[0][:120]}"
        finally:
            codec.amp = None
        decision.max_abs_diff[dtype] = diff
        if diff <= tolerance:
            codec.amp = decision.chosen = dtype
            decision.reason = f"{dtype} output within {diff:.2g} of float32 (tolerance {tolerance:g})"
            return decision
    tried = ", ".join(f"{k} {v:.2g}" for k, v in decision.max_abs_diff.items())
    if requested != "auto":
        raise AmpCheckError(f"{codec.spec}: --amp {requested} changes the output by up to {tried} (tolerance "
                            f"{tolerance:g}), so it would not re-synthesise the same fakes. Fix: use --amp auto "
                            "or off")
    decision.reason = f"float32: AMP exceeds tolerance {tolerance:g} ({tried})"
    return decision
