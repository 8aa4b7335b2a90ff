"""Install the plugin's optional Python packages with QGIS's own Python into a folder of the user's profile.

Kept free of qgis (and of the engine) so the command building is testable anywhere. Why a private folder
(``<profile>/python/lc_plugin_deps``) and ``pip install --target``: no administrator rights, nothing of
QGIS's or the system's Python changes (removing the folder undoes it), and pip skips its PEP 668
"externally-managed-environment" refusal for ``--target`` (Debian 12's python3). The folder is
*appended* to ``sys.path`` at plugin load, so a package QGIS already ships (numpy, GDAL) always wins;
numpy is pinned to the version QGIS's Python has, so the new wheels are built against it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable, Sequence

DEPS_FOLDER = "lc_plugin_deps"

# Import name → requirement, for what Train, Classify and s2cloudless cloud masks need (as in requirements.txt).
PACKAGES = {
    "lightgbm": "lightgbm>=4.3,<5",
    "onnxruntime": "onnxruntime>=1.17,<2",
    "onnxmltools": "onnxmltools>=1.12,<2",
    "onnx": "onnx>=1.15,<2",
    "s2cloudless": "s2cloudless==1.7.3",
}
# Which algorithms cannot run without a package (for the message at plugin load).
NEEDED_BY = {
    "lightgbm": "Train classifier",
    "onnxruntime": "Classify",
    "onnxmltools": "Train classifier",
    "onnx": "Train classifier",
    "s2cloudless": "Cloud masks (s2cloudless)",
}


def deps_folder(profile_dir: str) -> str:
    """The plugin-private package folder of a QGIS profile folder (QgsApplication.qgisSettingsDirPath())."""
    return os.path.join(profile_dir, "python", DEPS_FOLDER)


def add_to_path(folder: str) -> bool:
    """Put ``folder`` at the end of sys.path (after QGIS's own packages); True if it was added."""
    if not os.path.isdir(folder) or folder in sys.path:
        return False
    sys.path.append(folder)
    importlib.invalidate_caches()
    return True


def missing_packages(packages: Sequence[str] = tuple(PACKAGES)) -> list[str]:
    """Import names of ``packages`` that this Python cannot import (found without importing them)."""
    return [name for name in packages if not _findable(name)]


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):  # a finder that refuses the name, a half-installed package
        return False


def python_candidates(executable: str, prefix: str, platform: str) -> list[str]:
    """Where QGIS's Python interpreter is: inside QGIS, sys.executable is often the QGIS program itself
    (Windows qgis-bin.exe, macOS QGIS.app/Contents/MacOS/QGIS), so look next to sys.prefix too."""
    if platform.startswith("win"):  # OSGeo4W and the standalone installer: <root>/apps/Python3x/python.exe
        names = [os.path.join(prefix, "python.exe"), os.path.join(prefix, "python3.exe")]
    elif platform == "darwin":  # QGIS.app bundles Python.framework (prefix) and a bin/python3 in Contents/MacOS
        names = [os.path.join(prefix, "bin", "python3"), os.path.join(os.path.dirname(executable), "bin", "python3")]
    else:
        names = [os.path.join(prefix, "bin", f"python{sys.version_info.major}.{sys.version_info.minor}"), os.path.join(prefix, "bin", "python3")]
    base = os.path.basename(executable).lower()
    if base.startswith("python"):
        names.insert(0, executable)
    return names


def find_python(executable: str = sys.executable, prefix: str = sys.base_prefix, platform: str = sys.platform) -> str | None:
    """The first interpreter among python_candidates that exists."""
    for path in python_candidates(executable, prefix, platform):
        if os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    return None


def pip_command(python: str, target: str, requirements: Sequence[str], constraints: str | None = None, find_links: str | None = None) -> list[str]:
    """The pip call: into ``target`` only, no user/system site, no prompt; ``find_links``: a local wheel
    folder used instead of PyPI (offline installs and the tests)."""
    cmd = [python, "-m", "pip", "install", "--target", target, "--upgrade", "--no-input", "--disable-pip-version-check", "--no-warn-script-location"]
    if constraints:
        cmd += ["--constraint", constraints]
    if find_links:
        cmd += ["--no-index", "--find-links", find_links]
    return cmd + list(requirements)


def pins(names: Sequence[str]) -> list[str]:
    """``name==version`` of the packages this Python already has, for pip's constraint file."""
    from importlib import metadata

    out = []
    for name in names:
        try:
            out.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return out


def install(
    target: str,
    requirements: Sequence[str],
    python: str | None = None,
    find_links: str | None = None,
    log: Callable[[str], None] = lambda line: None,
    is_cancelled: Callable[[], bool] = lambda: False,
) -> tuple[bool, str]:
    """Run pip; returns (ok, the last lines of its output). ``log`` gets each output line as it comes."""
    python = python or find_python()
    if python is None:
        return False, f"QGIS's Python interpreter was not found next to {sys.executable} or in {sys.base_prefix}."
    os.makedirs(target, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if k not in ("PIP_USER", "PIP_REQUIRE_VIRTUALENV", "PIP_TARGET", "PIP_PREFIX")}
    lines: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        constraints = os.path.join(tmp, "constraints.txt")
        with open(constraints, "w", encoding="utf-8") as f:
            f.write("\n".join(pins(("numpy", "scipy"))) + "\n")
        cmd = pip_command(python, target, requirements, constraints, find_links)
        log(" ".join(cmd))
        popen = dict(stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0))
        with subprocess.Popen(cmd, **popen) as proc:
            for line in proc.stdout:
                lines.append(line.rstrip())
                log(lines[-1])
                if is_cancelled():
                    proc.terminate()
                    return False, "Cancelled."
    tail = "\n".join(lines[-15:])
    if proc.returncode != 0 and "No module named pip" in tail:
        tail += "\npip is not installed for this Python; on Debian/Ubuntu: sudo apt install python3-pip."
    return proc.returncode == 0, tail
