"""The plugin's toolbar buttons and menu entries for the workbench and pixel-profile docks."""

from __future__ import annotations

import os

from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QIcon

from .compat import QAction

ICON = os.path.join(os.path.dirname(os.path.dirname(__file__)), "resources", "icon.svg")
MENU = "&Land cover"


class WorkbenchActions:
    """Creates the docks lazily (matplotlib and the panel load on first use, not at QGIS start)."""

    def __init__(self, iface) -> None:
        self.iface = iface
        self.workbench = None
        self.profile = None
        self.actions: list[QAction] = []

    def start(self) -> None:
        window = self.iface.mainWindow()
        for text, slot in (("Land cover workbench", self.show_workbench), ("Pixel time-series profile", self.show_profile)):
            action = QAction(QIcon(ICON), text, window)
            action.setObjectName(text.replace(" ", ""))
            action.triggered.connect(slot)
            self.iface.addToolBarIcon(action)
            self.iface.addPluginToMenu(MENU, action)
            self.actions.append(action)

    def show_profile(self):
        if self.profile is None:
            from .profile_dock import ProfileDock

            self.profile = ProfileDock(self.iface.mapCanvas(), self.iface.mainWindow())
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.profile)
        self.profile.show()
        self.profile.raise_()
        self.profile.pick.setChecked(True)
        return self.profile

    def show_workbench(self):
        if self.workbench is None:
            from .workbench_dock import LandCoverDock

            self.workbench = LandCoverDock(self.iface.mapCanvas(), self.show_profile_dock(), self.iface.mainWindow())
            self.iface.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, self.workbench)
            self.workbench.load_from_project()
        self.workbench.show()
        self.workbench.raise_()
        return self.workbench

    def show_profile_dock(self):
        """The profile dock, created hidden, so a run can hand it its layers."""
        if self.profile is None:
            self.show_profile()
            self.profile.pick.setChecked(False)
            self.profile.hide()
        return self.profile

    def stop(self) -> None:
        for action in self.actions:
            self.iface.removeToolBarIcon(action)
            self.iface.removePluginMenu(MENU, action)
        if self.workbench is not None:
            self.workbench.disconnect_project()
        if self.profile is not None:
            self.profile.release()
        for dock in (self.workbench, self.profile):
            if dock is not None:
                self.iface.removeDockWidget(dock)
                dock.deleteLater()
        self.actions, self.workbench, self.profile = [], None, None
