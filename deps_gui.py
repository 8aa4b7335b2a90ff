"""QGIS side of the dependency installer: the check at plugin load, the "Install Python dependencies"
action and the background task that runs pip (deps_installer.py holds the logic, without qgis)."""

from __future__ import annotations

from qgis.core import Qgis, QgsApplication, QgsMessageLog, QgsTask

from . import deps_installer

LOG_TAG = "Land cover"
ACTION_TEXT = "Install Python dependencies…"


def profile_deps_folder() -> str:
    return deps_installer.deps_folder(QgsApplication.qgisSettingsDirPath())


def missing_message(missing: list[str]) -> str:
    """Which packages are missing and which algorithms cannot run until they are installed."""
    blocked = sorted({deps_installer.NEEDED_BY[name] for name in missing if name in deps_installer.NEEDED_BY})
    return (
        f"Missing Python packages: {', '.join(missing)}; {', '.join(blocked)} cannot run yet. "
        f"{ACTION_TEXT.rstrip('…')} (button, or Plugins ▸ Land cover) installs them into {profile_deps_folder()}, "
        "no administrator rights needed."
    )


class DepsInstallTask(QgsTask):
    """pip into the profile's private folder, in the background; the result goes to the message bar and log."""

    def __init__(
        self, names: list[str], requirements: list[str], target: str, iface=None, python: str | None = None, find_links: str | None = None
    ) -> None:
        super().__init__("Land cover: installing Python dependencies", QgsTask.Flag.CanCancel)
        self.names, self.requirements, self.target, self.iface = names, requirements, target, iface
        self.python, self.find_links = python, find_links
        self.ok, self.output, self.message = False, "", ""
        self._lines = 0

    def _log(self, line: str) -> None:
        QgsMessageLog.logMessage(line, LOG_TAG, Qgis.MessageLevel.Info)
        self._lines += 1
        self.setProgress(min(95.0, 100.0 * (1 - 0.97**self._lines)))  # pip says nothing of its total: creep towards 95 %

    def run(self) -> bool:
        self.ok, self.output = deps_installer.install(
            self.target, self.requirements, python=self.python, find_links=self.find_links, log=self._log, is_cancelled=self.isCanceled
        )
        return self.ok

    def finished(self, result: bool) -> None:
        deps_installer.add_to_path(self.target)
        if result and not deps_installer.missing_packages(self.names):
            level = Qgis.MessageLevel.Success
            self.message = f"Python dependencies installed in {self.target}; Train, Classify and s2cloudless cloud masks can run now."
        else:
            level = Qgis.MessageLevel.Critical
            self.message = f"Installing the Python dependencies failed (details in the log, tab {LOG_TAG}): {self.output[-600:]}"
        QgsMessageLog.logMessage(self.message, LOG_TAG, level)
        if self.iface is not None:
            self.iface.messageBar().pushMessage(LOG_TAG, self.message, level, 0 if level == Qgis.MessageLevel.Critical else 10)


class DependencyCheck:
    """At plugin load: make the private folder importable, say what is missing (message bar with an
    install button in desktop QGIS, the log in qgis_process) and add the install action to the Plugins menu."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.action = None
        self.task: DepsInstallTask | None = None

    def start(self) -> list[str]:
        from .lc_plugin.core import deps

        deps.INSTALL_FOLDER = profile_deps_folder()  # the engine's advice names the real folder
        deps_installer.add_to_path(deps.INSTALL_FOLDER)
        missing = deps_installer.missing_packages()
        if missing:
            QgsMessageLog.logMessage(missing_message(missing), LOG_TAG, Qgis.MessageLevel.Warning)
        if self.iface is None:
            return missing
        from qgis.PyQt.QtWidgets import QPushButton

        try:
            from qgis.PyQt.QtGui import QAction  # Qt6 (QGIS 4)
        except ImportError:
            from qgis.PyQt.QtWidgets import QAction  # Qt5

        self.action = QAction(ACTION_TEXT, self.iface.mainWindow())
        self.action.triggered.connect(self.install)
        self.iface.addPluginToMenu("Land cover", self.action)
        if missing:
            bar = self.iface.messageBar()
            item = bar.createMessage(LOG_TAG, missing_message(missing))
            button = QPushButton(ACTION_TEXT.rstrip("…"), item)
            button.clicked.connect(self.install)
            item.layout().addWidget(button)
            bar.pushWidget(item, Qgis.MessageLevel.Warning)
        return missing

    def install(self) -> None:
        missing = deps_installer.missing_packages() or list(deps_installer.PACKAGES)
        requirements = [deps_installer.PACKAGES[name] for name in missing]
        self.task = DepsInstallTask(missing, requirements, profile_deps_folder(), self.iface)
        QgsApplication.taskManager().addTask(self.task)
        if self.iface is not None:
            text = f"Installing {', '.join(missing)} in the background (progress in the task bar)."
            self.iface.messageBar().pushMessage(LOG_TAG, text, Qgis.MessageLevel.Info, 5)

    def stop(self) -> None:
        if self.action is not None and self.iface is not None:
            self.iface.removePluginMenu("Land cover", self.action)
        self.action = None
