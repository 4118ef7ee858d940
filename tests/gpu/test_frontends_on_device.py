"""Front-ends on each device against the CPU: LFCC, log-mel, raw, sinc and the CQT image.

Tolerance: max(1e-4, 4 x the CPU's own float32 error), where that error is the largest
|float32 CPU - float64 CPU| of the same front-end on the same input.  Two float32
implementations that are each within e of the exact result differ by at most 2e; the factor 4
leaves room for cuFFT's and cuDNN's other summation orders.  It is needed because these are
log features: near a spectral valley log(power + floor) turns a 1e-7 relative rounding of
the power into a much larger absolute change, so a flat 1e-4 would measure the input, not
the device.  TF32 is switched off for the comparison (cuDNN convolutions use it by default on
Ampere and later); the TF32 figure is recorded, not asserted.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch

from benchmark.frontends import create_frontend
from benchmark.frontends.cqt import CQTImage
from tests.codecfake_build.signals import harmonic_glide
from tests.gpu.conftest import DEVICES, record, strict_float32

NAMES = ("logmel", "lfcc", "raw", "sinc", "cqt")


def _frontend(name: str) -> torch.nn.Module:
    return CQTImage() if name == "cqt" else create_frontend(name)


def _wave() -> torch.Tensor:
    return torch.from_numpy(np.stack([harmonic_glide(1.0, seed=0), 0.5 * harmonic_glide(1.0, seed=1)]))


def _distance(name: str, a: torch.Tensor, b: torch.Tensor) -> float:
    """Largest |a - b|; for the CQT's phase channel the wrapped angle difference, taken only
    where the magnitude is above 1e-3 of the peak (a phase of near-silence is noise)."""
    a, b = a.double().cpu(), b.double().cpu()
    if name != "cqt":
        return float((a - b).abs().max())
    logmag, phase_a, phase_b = b[:, 0], a[:, 1], b[:, 1]
    mag_diff = float((a[:, 0] - logmag).abs().max())
    loud = logmag > math.log(1e-3) + logmag.amax(dim=(-2, -1), keepdim=True)
    wrapped = torch.remainder(phase_a - phase_b + math.pi, 2 * math.pi) - math.pi
    return max(mag_diff, float(wrapped.abs()[loud].max()))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("name", NAMES)
def test_device_output_equals_the_cpu(name, device):
    wave = _wave()
    fe = _frontend(name)
    exact = copy.deepcopy(fe).double()(wave.double())
    cpu = fe(wave)
    assert cpu.dtype == torch.float32 and torch.isfinite(cpu).all()
    tolerance = max(1e-4, 4 * _distance(name, cpu, exact))
    on_device = copy.deepcopy(fe).to(device)
    with strict_float32():
        got = on_device(wave.to(device))
    assert got.device.type == device and got.shape == cpu.shape
    diff = _distance(name, got, cpu)
    tf32 = _distance(name, on_device(wave.to(device)), cpu)  # the device's default flags
    record("frontend_vs_cpu", device, frontend=name, max_abs_diff=diff, tolerance=tolerance, default_flags_diff=tf32)
    assert diff <= tolerance, f"{name} on {device} differs from the CPU by {diff:.3g} (tolerance {tolerance:.3g})"
