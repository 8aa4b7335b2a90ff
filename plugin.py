"""The plugin object QGIS keeps: adds and removes the Processing provider and the shipped models."""

from __future__ import annotations

import glob
import os

from qgis.core import QgsApplication, QgsProcessingModelAlgorithm

from .deps_gui import DependencyCheck
from .provider import LandCoverProvider

MODELS_DIR = os.path.join(os.path.dirname(__file__), "resources", "models")
MODEL_PROVIDER_ID = "model"  # the toolbox's "Models" node


def model_files() -> list[str]:
    return sorted(glob.glob(os.path.join(MODELS_DIR, "*.model3")))


class ModelRegistration:
    """Keeps the shipped .model3 files in the toolbox's Models (QGIS 3.22 and later).

    The Models provider reloads its algorithms from the user's model folders whenever it
    refreshes (e.g. after a model is saved), which drops anything added from outside; so the
    models are added again after every load, and the provider is refreshed on unload.
    """

    def __init__(self) -> None:
        self.provider = None
        self.registry = QgsApplication.processingRegistry()
        self.names: list[str] = []

    def start(self) -> None:
        self.registry.providerAdded.connect(self._provider_added)
        self._attach(self.registry.providerById(MODEL_PROVIDER_ID))

    def _provider_added(self, provider_id: str) -> None:
        if provider_id == MODEL_PROVIDER_ID:
            self._attach(self.registry.providerById(provider_id))

    def _attach(self, provider) -> None:
        if provider is None or provider is self.provider:
            return
        self.provider = provider
        provider.algorithmsLoaded.connect(self.add_models)
        self.add_models()

    def add_models(self) -> None:
        if self.provider is None:
            return
        self.names = []
        for path in model_files():
            model = QgsProcessingModelAlgorithm()
            if not model.fromFile(path):
                continue
            if self.provider.algorithm(model.name()) is None:
                self.provider.addAlgorithm(model)
            self.names.append(model.name())

    def stop(self) -> None:
        try:
            self.registry.providerAdded.disconnect(self._provider_added)
        except (TypeError, RuntimeError):
            pass
        if self.provider is not None:
            try:
                self.provider.algorithmsLoaded.disconnect(self.add_models)
                self.provider.refreshAlgorithms()  # back to the user's own models
            except (TypeError, RuntimeError):
                pass
        self.provider = None


class LandCoverPlugin:
    def __init__(self, iface) -> None:
        self.iface = iface  # None under qgis_process
        self.provider: LandCoverProvider | None = None
        self.models: ModelRegistration | None = None
        self.dependencies: DependencyCheck | None = None
        self.workbench = None  # the docks' toolbar buttons and menu entries (desktop QGIS only)

    def initProcessing(self) -> None:  # noqa: N802
        if self.provider is not None:  # QGIS calls both initProcessing and initGui
            return
        self.dependencies = DependencyCheck(self.iface)
        self.dependencies.start()  # before the provider, so its algorithms find the packages installed for the plugin
        self.provider = LandCoverProvider()
        QgsApplication.processingRegistry().addProvider(self.provider)
        self.models = ModelRegistration()
        self.models.start()

    def initGui(self) -> None:  # noqa: N802
        self.initProcessing()
        if self.iface is not None and self.workbench is None:
            from .gui.actions import WorkbenchActions

            self.workbench = WorkbenchActions(self.iface)
            self.workbench.start()

    def unload(self) -> None:
        if self.workbench is not None:
            self.workbench.stop()
            self.workbench = None
        if self.dependencies is not None:
            self.dependencies.stop()
            self.dependencies = None
        if self.models is not None:
            self.models.stop()
            self.models = None
        if self.provider is not None:
            QgsApplication.processingRegistry().removeProvider(self.provider)
            self.provider = None
