"""landcover:download's source parameters through processing.run, against servers on 127.0.0.1:
the Sentinel Hub source with credentials from QGIS's authentication database (AUTHCFG) and
from the environment, resume, and the errors that name the credential at fault."""

from __future__ import annotations

import json
import os

import pytest
from rasterio.warp import transform_bounds

from lc_plugin.io.rasters import read_stack
from tests.servers import SentinelHubServer, sh_item
from tests.vectors import write_polygon

SECRET = "s3cret-value-42"


@pytest.fixture(scope="module")
def sh_grid(tmp_path_factory) -> str:
    """A one-patch grid (30 × 30 px at 10 m) as written by creategrid."""
    import processing

    folder = tmp_path_factory.mktemp("shgrid")
    aoi = write_polygon(str(folder / "aoi.gpkg"), "POLYGON((404110 5095810,404390 5095810,404390 5096090,404110 5096090,404110 5095810))")
    return processing.run("landcover:creategrid", {"AOI": aoi, "PATCH_SIZE": 30, "RESOLUTION": 10, "OUTPUT": str(folder / "grid.gpkg")})["OUTPUT"]


def items() -> list[dict]:
    b84 = list(transform_bounds("EPSG:32633", "EPSG:4326", 400000, 5090000, 410000, 5100000))
    return [sh_item("T33_20230601", "2023-06-01T10:00:00Z", 5.0, b84), sh_item("T33_20230606", "2023-06-06T10:00:00Z", 5.0, b84)]


def params(grid: str, srv: SentinelHubServer, folder: str, **extra) -> dict:
    return {
        "PATCHES": grid,
        "START_DATE": "2023-06-01",
        "END_DATE": "2023-06-30",
        "SOURCE": 1,
        "SH_ENDPOINT": srv.url,
        "MAX_CLOUD": 50,
        "THREADS": 2,
        "OUTPUT_FOLDER": folder,
        **extra,
    }


def basic_authcfg(user: str, password: str) -> str:
    from qgis.core import QgsApplication, QgsAuthMethodConfig

    manager = QgsApplication.authManager()
    if not manager.masterPasswordIsSet():
        manager.setMasterPassword("test-master", True)
    cfg = QgsAuthMethodConfig("Basic")
    cfg.setName(f"sentinel hub {user}")
    cfg.setConfig("username", user)
    cfg.setConfig("password", password)
    assert manager.storeAuthenticationConfig(cfg)[0]
    return cfg.id()


def test_sentinelhub_with_authcfg_and_resume(run_alg, sh_grid, tmp_path, monkeypatch):
    monkeypatch.delenv("SH_CLIENT_ID", raising=False)
    monkeypatch.delenv("SH_CLIENT_SECRET", raising=False)
    authcfg = basic_authcfg("test-client", SECRET)
    folder = str(tmp_path / "stacks")
    with SentinelHubServer(items()) as srv:
        result = run_alg("download", params(sh_grid, srv, folder, AUTHCFG=authcfg))
        assert len([r for r in srv.requests if r.endswith("/process")]) == 2
        stack = read_stack(result["OUTPUT"])
        assert stack.bands[-2:] == ["CLM", "CLP"] and "B10" in stack.bands and len(stack.dates) == 2
        assert stack.tags["SOURCE"] == "sentinelhub" and json.loads(stack.tags["ITEM_IDS"]) == [["T33_20230601"], ["T33_20230606"]]
        assert SECRET not in json.dumps(stack.tags)
        srv.requests.clear()
        again = run_alg("download", params(sh_grid, srv, folder, AUTHCFG=authcfg))  # resume: nothing downloaded
        assert again["STACKS"] == result["STACKS"] and srv.requests == []
    assert not os.path.exists(os.path.join(folder, ".lc_cache"))


def test_sentinelhub_credentials_errors(run_alg, sh_grid, tmp_path, monkeypatch):
    from qgis.core import QgsProcessingException

    monkeypatch.delenv("SH_CLIENT_ID", raising=False)
    monkeypatch.delenv("SH_CLIENT_SECRET", raising=False)
    with SentinelHubServer(items()) as srv:
        with pytest.raises(QgsProcessingException) as err:
            run_alg("download", params(sh_grid, srv, str(tmp_path / "a")))
        assert str(err.value).startswith("AUTHCFG:") and "SH_CLIENT_ID" in str(err.value)
        wrong = basic_authcfg("test-client", "wrong-secret-xyz")
        with pytest.raises(QgsProcessingException) as err:
            run_alg("download", params(sh_grid, srv, str(tmp_path / "b"), AUTHCFG=wrong))
        assert str(err.value).startswith("AUTHCFG:") and wrong in str(err.value) and "wrong-secret-xyz" not in str(err.value)
        monkeypatch.setenv("SH_CLIENT_ID", "test-client")
        monkeypatch.setenv("SH_CLIENT_SECRET", SECRET)
        result = run_alg("download", params(sh_grid, srv, str(tmp_path / "c"), BANDS="B04,CLM"))
        assert read_stack(result["OUTPUT"]).bands == ["B04", "CLM"]
