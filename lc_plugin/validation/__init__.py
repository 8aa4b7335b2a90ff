"""Validation: accuracy reports, area estimation (Olofsson et al. 2014), metrics, figures and pages.

The step entry points and their results, re-exported here: ``accuracy_report_file`` and
``predictions_report_file`` (→ ``AccuracyReport``), ``sample_design_file`` (→ ``DrawnSample``) and
``area_estimate_file`` (→ ``AreaEstimate``). Importing the package loads numpy, rasterio and GDAL;
matplotlib and the model reader (onnxruntime) are imported when a step needs them.
"""

from .area import AreaEstimate, DrawnSample, area_estimate_file, sample_design_file
from .report import AccuracyReport, accuracy_report_file, predictions_report_file

__all__ = ["AccuracyReport", "AreaEstimate", "DrawnSample", "accuracy_report_file", "area_estimate_file", "predictions_report_file", "sample_design_file"]
