"""The plugin's dependency check and its install task (QgsTask) in QGIS, against a local wheel folder."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.test_deps_installer import SYSTEM_PYTHON, make_wheel


def test_check_names_what_is_missing_and_which_steps_wait(qgis_app):
    from landcover import deps_gui
    from landcover.lc_plugin.core import deps

    text = deps_gui.missing_message(["lightgbm", "s2cloudless"])
    assert "lightgbm, s2cloudless" in text and "Train classifier" in text and "Cloud masks (s2cloudless)" in text
    assert "Install Python dependencies" in text and deps_gui.profile_deps_folder() in text
    assert deps_gui.DependencyCheck(None).start() == []  # this test Python has them all; headless: no GUI
    assert deps.INSTALL_FOLDER == deps_gui.profile_deps_folder() and deps.INSTALL_FOLDER.endswith("python/lc_plugin_deps")


@pytest.mark.skipif(
    subprocess.run([SYSTEM_PYTHON, "-m", "pip", "--version"], capture_output=True).returncode != 0, reason="needs Debian's python3-pip"
)
def test_install_task_installs_and_makes_the_package_importable(qgis_app, tmp_path):
    from landcover.deps_gui import DepsInstallTask

    wheels = tmp_path / "wheels"
    wheels.mkdir()
    make_wheel(wheels, "lctaskdummy", "1.0", "VALUE = 7\n")
    target = str(tmp_path / "profile" / "python" / "lc_plugin_deps")
    task = DepsInstallTask(["lctaskdummy"], ["lctaskdummy"], target, python=SYSTEM_PYTHON, find_links=str(wheels))
    try:
        assert task.run()  # what the task manager runs in its thread
        task.finished(True)
        import lctaskdummy

        assert lctaskdummy.VALUE == 7 and task.message.startswith("Python dependencies installed in " + target)
        assert 0 < task.progress() <= 95
    finally:
        if target in sys.path:
            sys.path.remove(target)
        sys.modules.pop("lctaskdummy", None)
