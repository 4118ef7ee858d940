"""scripts/gpu_session: the wheel-set check that decides what travels to the GPU machine, and
the shell scripts' syntax and argument errors (their full rehearsal is rehearse.sh: minutes)."""

from __future__ import annotations

import importlib.util
import subprocess
import zipfile
from pathlib import Path

import pytest

KIT = Path(__file__).resolve().parents[2] / "scripts" / "gpu_session"


def _check_wheels():
    spec = importlib.util.spec_from_file_location("check_wheels", KIT / "check_wheels.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _wheel(folder: Path, name: str, version: str, *requires: str) -> None:
    meta = "\n".join(["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
                      *(f"Requires-Dist: {r}" for r in requires)]) + "\n"
    with zipfile.ZipFile(folder / f"{name}-{version}-py3-none-any.whl", "w") as z:
        z.writestr(f"{name}-{version}.dist-info/METADATA", meta)


def test_deps_names_what_neither_the_set_nor_the_image_has(tmp_path, capsys):
    _wheel(tmp_path, "alpha", "1.0", "numpy>=1.17", "beta>=2", "gamma; python_version >= '3.13'",
           "delta; extra == 'docs'")
    _wheel(tmp_path, "beta", "2.1", "Missing_Pkg", "huggingface-hub>=1.31,<3")
    assert _check_wheels().check_deps(tmp_path) == 1
    out = capsys.readouterr().out
    # markers are read for CPython 3.12 without extras: gamma and delta are not needed
    assert out.strip().splitlines()[-1] == "2 wheels, 0 problems, missing: missing-pkg"


def test_deps_refuses_a_version_the_image_or_the_set_cannot_meet(tmp_path, capsys):
    _wheel(tmp_path, "alpha", "1.0", "huggingface-hub>=2", "beta<2")
    _wheel(tmp_path, "beta", "2.1")
    assert _check_wheels().check_deps(tmp_path) == 1
    out = capsys.readouterr().out
    assert "the image has huggingface-hub 1.33.0" in out and "the carried beta is 2.1" in out


def test_deps_refuses_two_versions_of_one_package(tmp_path, capsys):
    _wheel(tmp_path, "beta", "2.1")
    _wheel(tmp_path, "beta", "2.2")
    assert _check_wheels().check_deps(tmp_path) == 1
    assert "two versions of beta" in capsys.readouterr().out


def test_speechtokenizer_training_requirements_are_not_carried(tmp_path, capsys):
    _wheel(tmp_path, "speechtokenizer", "1.0.1", "torch", "torchaudio", "lion-pytorch", "accelerate", "einops")
    assert _check_wheels().check_deps(tmp_path) == 0
    assert capsys.readouterr().out.strip().endswith("missing:")


@pytest.mark.parametrize("script", sorted(p.name for p in KIT.glob("*.sh")))
def test_shell_scripts_parse(script):
    res = subprocess.run(["bash", "-n", str(KIT / script)], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_run_sh_rejects_an_unknown_part(tmp_path):
    res = subprocess.run(["bash", str(KIT / "run.sh"), "everything"], capture_output=True, text=True,
                         cwd=KIT.parents[1], env={"PATH": "/usr/bin:/bin", "OUT": str(tmp_path)})
    assert res.returncode == 2 and "usage: run.sh quick|codecs|part2|part3|setup|full" in res.stdout
