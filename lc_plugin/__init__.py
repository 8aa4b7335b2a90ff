"""lc_plugin: the land-cover engine (numpy, GDAL/rasterio, LightGBM, onnxruntime).

It never imports qgis: every step is a plain function over arrays and files, usable from a
notebook, a script or a cluster worker. The Processing algorithms in ``algorithms/`` only
translate parameters, feedback and errors to and from these functions.
"""

__version__ = "0.1.0"
