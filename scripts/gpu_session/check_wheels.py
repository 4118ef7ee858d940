"""Is the carried wheel set complete for the GPU image?  Two checks, both offline.

  deps DIR     every wheel's Requires-Dist (markers evaluated for CPython 3.12 on x86-64 Linux,
               no extras) must be met by another carried wheel or by a package the image
               already has (image_packages.txt beside this file, from the device KINDS.md);
               prints the unmet requirement names on the last line as ``missing: a b c`` so
               fetch_wheels.sh can fetch them, and fails on two versions of one package.
  imports SITE MODULE...
               imports each module with SITE first on sys.path, in a fresh interpreter each;
               a module that fails only because an image package is absent here (numpy,
               torch, ...) counts as deferred to the GPU machine, anything else fails.

Run ``deps`` with any Python that has ``packaging`` (the project .venv); ``imports`` with the
interpreter whose version the wheels are for (python3.12).
"""

from __future__ import annotations

import email.parser
import re
import subprocess
import sys
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
TARGET_ENV = {"python_version": "3.12", "python_full_version": "3.12.3", "sys_platform": "linux",
              "platform_system": "Linux", "platform_machine": "x86_64", "os_name": "posix",
              "implementation_name": "cpython", "platform_python_implementation": "CPython", "extra": ""}
#: Declared requirements nothing we run needs: speechtokenizer's trainer (its codec path imports
#: only the model module, see codecfake_build/codecs/speechtokenizer.py) and torchaudio.
NOT_NEEDED = {"speechtokenizer": {"torchaudio", "lion-pytorch", "accelerate", "matplotlib"}}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def image_packages() -> dict[str, str | None]:
    """name -> version where the image's version is known, else None."""
    found: dict[str, str | None] = {}
    for line in (HERE / "image_packages.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[canonical(name)] = version or None
    return found


def wheel_metadata(path: Path) -> tuple[str, str, list[str]]:
    with zipfile.ZipFile(path) as z:
        meta = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        msg = email.parser.Parser().parsestr(z.read(meta).decode("utf-8"))
    return canonical(msg["Name"]), msg["Version"], msg.get_all("Requires-Dist") or []


def check_deps(wheel_dir: Path) -> int:
    from packaging.requirements import Requirement

    image = image_packages()
    carried: dict[str, str] = {}
    problems, missing, notes = [], [], []
    wheels = sorted(wheel_dir.glob("*.whl"))
    if not wheels:
        print(f"no wheels in {wheel_dir}. Fix: run scripts/gpu_session/fetch_wheels.sh")
        return 1
    metas = [wheel_metadata(w) for w in wheels]
    for (name, version, _), path in zip(metas, wheels):
        if name in carried:
            problems.append(f"two versions of {name} ({carried[name]}, {version}): pip --target refuses both; "
                            f"delete one of the {name} wheels")
        carried[name] = version
        if name in image:
            notes.append(f"{name} {version} shadows the image's {image[name] or '(version unknown)'}")
    for name, _, requires in metas:
        for text in requires:
            req = Requirement(text)
            if req.marker is not None and not req.marker.evaluate(TARGET_ENV):
                continue
            dep = canonical(req.name)
            if dep in NOT_NEEDED.get(name, set()):
                continue
            if dep in carried:
                if not req.specifier.contains(carried[dep], prereleases=True):
                    problems.append(f"{name} needs {req}, the carried {dep} is {carried[dep]}")
            elif dep in image:
                have = image[dep]
                if have is None:
                    if req.specifier:
                        notes.append(f"{name} needs {req}; the image's {dep} version is not recorded "
                                     "(run.sh prints it there)")
                elif not req.specifier.contains(have, prereleases=True):
                    problems.append(f"{name} needs {req}, the image has {dep} {have}: carry a matching wheel")
            else:
                missing.append(dep)
    for line in notes:
        print(f"note: {line}")
    for line in problems:
        print(f"PROBLEM: {line}")
    missing = sorted(set(missing))
    print(f"{len(wheels)} wheels, {len(problems)} problems, missing: {' '.join(missing)}")
    return 1 if problems or missing else 0


def check_imports(site: str, modules: list[str]) -> int:
    image = image_packages()
    failed = 0
    for module in modules:
        code = f"import sys; sys.path.insert(0, {site!r}); import {module}"
        res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if res.returncode == 0:
            print(f"ok        {module}")
            continue
        last = (res.stderr.strip().splitlines() or ["?"])[-1]
        absent = re.match(r"ModuleNotFoundError: No module named '([^'.]+)", last)
        if absent and canonical(absent.group(1)) in image | {"sklearn": None, "yaml": None}:
            print(f"deferred  {module}: needs the image's {absent.group(1)} (absent here)")
        else:
            print(f"FAILED    {module}: {last}")
            failed += 1
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "deps":
        return check_deps(Path(argv[1]))
    if len(argv) >= 3 and argv[0] == "imports":
        return check_imports(argv[1], argv[2:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
