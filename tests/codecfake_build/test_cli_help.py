"""`python -m codecfake_build --help` states the defaults a README reader relies on: the
builder uses a GPU where torch sees one (--device auto, as `benchmark` does), and the split seed
is 0."""

from __future__ import annotations

from codecfake_build.cli import build_parser


def test_help_states_device_and_seed_defaults():
    text = " ".join(build_parser().format_help().split())
    assert "auto (cuda if torch sees a GPU, else cpu; the default)" in text
    assert "split seed (default 0)" in text
    args = build_parser().parse_args(["--codec", "mp3"])
    assert args.device == "auto" and args.seed == 0


def test_auto_device_is_cuda_only_where_torch_sees_a_gpu(monkeypatch):
    import pytest
    import torch

    from codecfake_build.cli import resolve_build_device

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_build_device("auto") == "cpu"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_build_device("auto") == "cuda"
    assert resolve_build_device("cpu") == "cpu"
    with pytest.raises(ValueError, match="unknown device"):
        resolve_build_device("gpu")
