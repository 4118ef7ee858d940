"""`python -m codecfake_build --help` states the defaults a README reader relies on: the
builder runs on the CPU unless --device says otherwise (unlike `benchmark`, whose default is
auto), and the split seed is 0."""

from __future__ import annotations

from codecfake_build.cli import build_parser


def test_help_states_device_and_seed_defaults():
    text = " ".join(build_parser().format_help().split())
    assert "cpu (the default, also on a GPU machine), cuda or cuda:N" in text
    assert "split seed (default 0)" in text
    args = build_parser().parse_args(["--codec", "mp3"])
    assert args.device == "cpu" and args.seed == 0
