"""Where time stacks come from: download sources behind one interface (``base.Source``: STAC + COGs,
Sentinel Hub Process API, local products), the Download writer they share, and the steps that build
stacks from files made elsewhere (ESA products, other tools' rasters, Sentinel-3 OLCI).

The step entry points and their results are re-exported here; importing this package loads GDAL,
rasterio and requests, nothing heavier.
"""

from .base import Scene, Source
from .buildstack import BuildStackResult, build_stack
from .download import DownloadResult, download_patch, download_patches, make_source
from .importer import import_patches, import_products
from .olci import olci_stack_file
from .olci_stac import olci_stac_stack_file
from .stac import StacSource

__all__ = [
    "BuildStackResult",
    "DownloadResult",
    "Scene",
    "Source",
    "StacSource",
    "build_stack",
    "download_patch",
    "download_patches",
    "import_patches",
    "import_products",
    "make_source",
    "olci_stac_stack_file",
    "olci_stack_file",
]
