"""Every shell command in the READMEs still parses: users copy them, so a renamed flag, a
subcommand that moved or a script that was deleted must fail here, not on their machine.

The package CLIs' commands go through their real argument parsers (nothing is run); a
benchmark script's flags must appear in its ``--help``; ``bash`` lines must name scripts that
exist.  What the commands do is tested elsewhere."""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import io
import re
import shlex
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", "benchmarks/README.md", "scripts/gpu_session/README.md"]
_FENCE = re.compile(r"^```(?:bash|sh)\s*\n(.*?)^```", re.MULTILINE | re.DOTALL)


def shell_commands(doc: str) -> list[str]:
    """The commands of a doc's bash blocks: continuations joined, comments and env prefixes dropped,
    ``a && b`` split."""
    out: list[str] = []
    for block in _FENCE.findall((ROOT / doc).read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"(^|\s)#.*$", "", line).strip()
            for part in line.split("&&"):
                words = shlex.split(part)
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words.pop(0)
                if words:
                    out.append(" ".join(shlex.quote(w) for w in words))
    return out


def _cases() -> list[tuple[str, str]]:
    return [(doc, cmd) for doc in DOCS for cmd in shell_commands(doc)]


def _python_target(words: list[str]) -> tuple[str, list[str]] | None:
    """('-m pkg' or a script path, its arguments) for a python command, else None."""
    if not words or not re.search(r"(^|/)python3?$", words[0]):
        return None
    if words[1] == "-m":
        return "-m " + words[2], words[3:]
    return words[1], words[2:]


def _no_abbreviations(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """A doc's '--ratio' must not pass because argparse expands it to '--ratios'."""
    parser.allow_abbrev = False
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _no_abbreviations(sub)
    return parser


def _parse_with(parser_factory, argv: list[str]) -> None:
    err = io.StringIO()
    try:
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            _no_abbreviations(parser_factory()).parse_args(argv)
    except SystemExit as exc:
        if exc.code not in (0, None):
            pytest.fail(f"{' '.join(argv)}: {err.getvalue().strip()}")


def _script_help(path: Path) -> str:
    spec = importlib.util.spec_from_file_location(f"_doc_{path.stem}", path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    try:
        spec.loader.exec_module(mod)
        out = io.StringIO()
        with contextlib.redirect_stdout(out), pytest.raises(SystemExit):
            mod.main(["--help"])
        return out.getvalue()
    finally:
        sys.modules.pop(spec.name, None)


def check_python(target: str, argv: list[str]) -> None:
    if target == "-m codecfake_build":
        from codecfake_build.cli import build_parser

        if argv[:1] == ["codecs"]:
            assert set(argv[1:]) <= {"--json", "--help"}, argv
            return
        _parse_with(build_parser, argv)
    elif target == "-m benchmark":
        from benchmark.cli import _parser

        _parse_with(_parser, argv)
    elif target == "-m leaderboard":
        from leaderboard.cli import _parser

        _parse_with(_parser, argv)
    elif target == "-m pytest":
        return
    elif target.endswith(".py"):
        path = ROOT / target
        assert path.is_file(), f"{target} does not exist"
        text = _script_help(path)
        for flag in (w.split("=", 1)[0] for w in argv if w.startswith("--")):
            assert re.search(rf"{re.escape(flag)}(?![\w-])", text), f"{target} --help has no {flag}"
    else:
        pytest.fail(f"no check for python {target}")


@pytest.mark.parametrize("doc,command", _cases(), ids=lambda v: v if "/" in v and len(v) < 40 else None)
def test_documented_command_parses(doc, command):
    words = shlex.split(command)
    target = _python_target(words)
    if target is not None:
        check_python(*target)
    elif words[0] == "bash":
        assert (ROOT / words[1]).is_file(), f"{doc}: {words[1]} does not exist"
    else:
        pytest.fail(f"{doc}: unrecognised command {command!r}: teach this test about it")


def test_every_doc_has_commands():
    for doc in DOCS:
        assert shell_commands(doc), f"{doc}: no bash block found (did the fence change?)"


def test_gpu_session_modes_exist():
    """The README's run.sh modes are ones run.sh accepts."""
    usage = (ROOT / "scripts/gpu_session/run.sh").read_text(encoding="utf-8")
    accepted = set(re.search(r"case \$MODE in ([\w|]+)\)", usage).group(1).split("|"))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    documented = set(re.search(r"run\.sh ([\w|]+)`", readme).group(1).split("|"))
    assert documented <= accepted


@pytest.mark.parametrize("script", sorted(p.name for p in (ROOT / "benchmarks").glob("*.py")))
def test_every_benchmark_script_takes_json(script):
    """benchmarks/README.md: every script writes where --json says (else over the committed result)."""
    assert re.search(r"--json(?![\w-])", _script_help(ROOT / "benchmarks" / script))
