"""The dependency installer (deps_installer.py): pip command, interpreter lookup, and a real install with
Debian's externally-managed python3 into a temporary profile from a local wheel folder (no network)."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import deps_installer  # noqa: E402  (the plugin root is not a package on the test path)

SYSTEM_PYTHON = "/usr/bin/python3"


def make_wheel(folder: Path, name: str, version: str, code: str, requires: tuple[str, ...] = ()) -> Path:
    """A minimal pure-Python wheel (PEP 427): one module, METADATA, WHEEL and a RECORD with sha256 hashes."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}.py": code,
        f"{dist}/METADATA": "Metadata-Version: 2.1\n" f"Name: {name}\nVersion: {version}\n" + "".join(f"Requires-Dist: {r}\n" for r in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{path},sha256={digest},{len(text.encode())}")
    files[f"{dist}/RECORD"] = "\n".join(record + [f"{dist}/RECORD,,"]) + "\n"
    wheel = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def test_pip_command_installs_into_the_target_only():
    cmd = deps_installer.pip_command("/py/python3", "/p/python/lc_plugin_deps", ["lightgbm>=4.3,<5"], "/tmp/c.txt", "/wheels")
    assert cmd[:6] == ["/py/python3", "-m", "pip", "install", "--target", "/p/python/lc_plugin_deps"]
    assert "--user" not in cmd and "--break-system-packages" not in cmd
    assert cmd[cmd.index("--constraint") + 1] == "/tmp/c.txt"
    assert cmd[-4:] == ["--no-index", "--find-links", "/wheels", "lightgbm>=4.3,<5"]
    assert "--no-index" not in deps_installer.pip_command("py", "t", ["x"])
    assert deps_installer.deps_folder("/home/u/.local/share/QGIS/QGIS3/profiles/default") == (
        "/home/u/.local/share/QGIS/QGIS3/profiles/default/python/lc_plugin_deps"
    )


def test_python_is_found_next_to_the_qgis_program():
    win = deps_installer.python_candidates(r"C:\OSGeo4W\bin\qgis-bin.exe", r"C:\OSGeo4W\apps\Python312", "win32")
    assert win[0] == os.path.join(r"C:\OSGeo4W\apps\Python312", "python.exe")
    mac = deps_installer.python_candidates(
        "/Applications/QGIS.app/Contents/MacOS/QGIS", "/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.9", "darwin"
    )
    assert mac == [
        "/Applications/QGIS.app/Contents/Frameworks/Python.framework/Versions/3.9/bin/python3",
        "/Applications/QGIS.app/Contents/MacOS/bin/python3",
    ]
    assert deps_installer.python_candidates("/usr/bin/python3", "/usr", "linux")[0] == "/usr/bin/python3"
    versioned = f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    assert deps_installer.find_python("/usr/bin/qgis", "/usr", "linux") in ("/usr/bin/python3", versioned)


@pytest.mark.skipif(
    subprocess.run([SYSTEM_PYTHON, "-m", "pip", "--version"], capture_output=True).returncode != 0, reason="needs Debian's python3-pip"
)
def test_install_into_a_profile_with_the_externally_managed_python(tmp_path):
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "lcdummy", "1.0", "from lcdummydep import BASE\nVALUE = BASE + 1\n", requires=("lcdummydep>=2",))
    make_wheel(wheels, "lcdummydep", "2.0", "BASE = 41\n")
    # what the old advice ran: Debian's Python refuses to install into itself (PEP 668)
    user_install = [SYSTEM_PYTHON, "-m", "pip", "install", "--user", "--no-index", "--find-links", str(wheels), "lcdummy"]
    refused = subprocess.run(user_install, capture_output=True, text=True)
    assert refused.returncode != 0 and "externally-managed-environment" in refused.stderr

    target = deps_installer.deps_folder(str(tmp_path / "profiles" / "default"))
    lines = []
    ok, tail = deps_installer.install(target, ["lcdummy"], python=SYSTEM_PYTHON, find_links=str(wheels), log=lines.append)
    assert ok, tail
    assert lines[0].startswith(f"{SYSTEM_PYTHON} -m pip install --target {target}")
    assert sorted(p for p in os.listdir(target) if p.endswith(".py")) == ["lcdummy.py", "lcdummydep.py"]
    probe = (
        f"import sys; sys.path.insert(0, {str(ROOT)!r}); import deps_installer as d; "
        f"assert d.missing_packages(['lcdummy']) == ['lcdummy']; added = d.add_to_path({target!r}); "
        "import lcdummy, numpy; "
        "print(added, lcdummy.VALUE, d.missing_packages(['lcdummy']), sys.path[-1].endswith('lc_plugin_deps'), numpy.__file__.startswith('/usr'))"
    )
    out = subprocess.run([SYSTEM_PYTHON, "-c", probe], capture_output=True, text=True, cwd=tmp_path)
    assert out.stdout.split() == ["True", "42", "[]", "True", "True"], out.stderr

    ok, tail = deps_installer.install(str(tmp_path / "t2"), ["lcdummy>=3"], python=SYSTEM_PYTHON, find_links=str(wheels))
    assert not ok and "lcdummy>=3" in tail  # pip's own reason comes back to the user
