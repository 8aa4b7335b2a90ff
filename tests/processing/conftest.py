"""Headless QGIS with Processing and this checkout's plugin loaded, once per test session."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, "/usr/share/qgis/python/plugins")  # Processing's own Python package


@pytest.fixture(scope="session")
def qgis_app(tmp_path_factory):
    """A QgsApplication with Processing initialised and the landcover provider registered."""
    os.environ["QGIS_CUSTOM_CONFIG_PATH"] = str(tmp_path_factory.mktemp("qgis-profile"))
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    plugins = ROOT / "build" / "plugins"
    plugins.mkdir(parents=True, exist_ok=True)
    link = plugins / "landcover"
    if not link.exists():
        link.symlink_to(ROOT, target_is_directory=True)
    sys.path.insert(0, str(plugins))
    import landcover

    plugin = landcover.classFactory(None)
    plugin.initProcessing()
    yield app
    plugin.unload()


@pytest.fixture(scope="session")
def demo_scene(tmp_path_factory):
    """The embedded demo scene (generated COGs + STAC items) served on 127.0.0.1."""
    from demo.scene import build_scene
    from demo.stac_server import StacServer

    scene = build_scene(str(tmp_path_factory.mktemp("demo-scene")))
    server = StacServer(scene.root).start()
    yield scene, server
    server.close()


@pytest.fixture
def run_alg(qgis_app):
    """processing.run with a fresh context; raises QgsProcessingException on failure."""
    import processing
    from qgis.core import QgsProcessingContext, QgsProcessingFeedback

    def _run(alg: str, params: dict) -> dict:
        context = QgsProcessingContext()
        return processing.run(f"landcover:{alg}", params, context=context, feedback=QgsProcessingFeedback())

    return _run
