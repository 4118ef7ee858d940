"""What `python -m benchmark <command> --help` must tell a user who follows the README: the
header lines evaluate's TSVs need (a hand-written keys.tsv without one is refused) and what
--device accepts."""

from __future__ import annotations

import pytest

from benchmark.cli import main


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_evaluate_help_names_both_headers(capsys):
    text = _help(capsys, "evaluate")
    assert "'filename<TAB>cm-score'" in text and "'filename<TAB>cm-label'" in text
    assert "bonafide|spoof" in text


@pytest.mark.parametrize("argv", [("score",), ("embed",), ("run",)])
def test_device_help_says_what_auto_means(capsys, argv):
    assert "auto (cuda if available, else cpu; the default), cpu, cuda or cuda:N" in _help(capsys, *argv)


def test_only_help_says_how_a_label_is_matched(capsys):
    text = _help(capsys, "run")
    assert "'aasist/...' is not 'w2v2-aasist/...'" in text and "group" in text
