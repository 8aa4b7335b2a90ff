"""Parameters of ``landcover:download`` for one patch of the demo scene's grid, shared by the Processing tests."""


def download_params(grid: str, url: str, collection: str, folder: str, start: str = "2017-01-01", end: str = "2017-03-31") -> dict:
    return {
        "PATCHES": grid,
        "PATCH_ID": "465_5079",
        "START_DATE": start,
        "END_DATE": end,
        "STAC_URL": url,
        "COLLECTION": collection,
        "MAX_CLOUD": 100,
        "OUTPUT_FOLDER": folder,
    }
