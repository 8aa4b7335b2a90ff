"""The plugin's panels in desktop QGIS: the "Land cover" workbench dock and the pixel profile dock.

GUI only: every computation is a Processing algorithm run or an engine call (lc_plugin); Qt comes
from qgis.PyQt with fully qualified enums, so the same code runs on QGIS 3.22 (Qt5) and QGIS 4 (Qt6).
"""
