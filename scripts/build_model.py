"""Regenerate resources/models/landcover_chain.model3, the whole chain as a graphical-modeler model.

Run: QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/build_model.py
Written by code (not by dragging boxes) so the model stays in step with the algorithms'
parameter ids; open it in the modeler to see or change it.
"""

from __future__ import annotations

import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "resources", "models", "landcover_chain.model3")
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_HASH_SEED", "0")  # the same attribute order on every run: diffs show real changes
sys.path.insert(0, "/usr/share/qgis/python/plugins")

DESCRIPTION = (
    "The whole land-cover chain for one patch: create patch grid → download Sentinel-2 time series (the patch "
    "PATCH_ID) → cloud masks (auto: s2cloudless with L1C bands, else SCL) → filter cloudy scenes → temporal "
    "interpolation → rasterize reference → train classifier → classify → accuracy report of the held-out test pixels. "
    "For several patches run the algorithms one by one (or demo/chain.py): Download's OUTPUT is the first stack only."
)
HELP = {
    "AOI": "Area of interest polygons (any CRS).",
    "PATCH_SIZE": "Patch size in pixels of 10 m (a side of 1000 pixels makes 10 km patches).",
    "PATCH_ID": "The patch to process (col_row id from the grid, e.g. 465_5079); empty: the first patch.",
    "START_DATE": "First date of the period (YYYY-MM-DD in qgis_process).",
    "END_DATE": "Last date of the period, inclusive.",
    "MAX_CLOUD": "Max scene cloud cover (%) in the STAC search.",
    "STAC_URL": "STAC API searched for scenes.",
    "COLLECTION": "STAC collection searched.",
    "REFERENCE": "Reference land-cover polygons.",
    "REFERENCE_FIELD": "Integer class field of the reference polygons.",
    "STEP_DAYS": "Interpolation step in days.",
    "SAMPLES_PER_CLASS": "Training pixels per class at most.",
    "N_ESTIMATORS": "Number of LightGBM trees.",
}


def build():
    from landcover.algorithms.params import date_parameter
    from landcover.lc_plugin.sources import download
    from qgis.core import (
        QgsProcessing,
        QgsProcessingModelAlgorithm,
        QgsProcessingModelChildAlgorithm,
        QgsProcessingModelOutput,
        QgsProcessingModelParameter,
        QgsProcessingParameterFeatureSource,
        QgsProcessingParameterField,
        QgsProcessingParameterNumber,
        QgsProcessingParameterString,
    )
    from qgis.core import (
        QgsProcessingModelChildParameterSource as Source,
    )
    from qgis.PyQt.QtCore import QDate, QPointF

    model = QgsProcessingModelAlgorithm("landcover_chain", "Land cover")
    polygon = [QgsProcessing.TypeVectorPolygon]
    definitions = [
        QgsProcessingParameterFeatureSource("AOI", "Area of interest", polygon),
        QgsProcessingParameterNumber("PATCH_SIZE", "Patch size (pixels)", QgsProcessingParameterNumber.Integer, 1000, minValue=1),
        QgsProcessingParameterString("PATCH_ID", "Patch id (empty: the first patch)", optional=True),
        date_parameter("START_DATE", "Start date", default=QDate(2017, 1, 1)),
        date_parameter("END_DATE", "End date", default=QDate(2017, 12, 31)),
        QgsProcessingParameterNumber("MAX_CLOUD", "Max scene cloud cover (%)", QgsProcessingParameterNumber.Double, 80.0, minValue=0, maxValue=100),
        QgsProcessingParameterString("STAC_URL", "STAC API URL", download.DEFAULT_STAC_URL),
        QgsProcessingParameterString("COLLECTION", "Collection", download.DEFAULT_COLLECTION),
        QgsProcessingParameterFeatureSource("REFERENCE", "Reference polygons", polygon),
        QgsProcessingParameterField("REFERENCE_FIELD", "Reference class field", parentLayerParameterName="REFERENCE"),
        QgsProcessingParameterNumber("STEP_DAYS", "Interpolation step (days)", QgsProcessingParameterNumber.Integer, 16, minValue=1),
        QgsProcessingParameterNumber("SAMPLES_PER_CLASS", "Samples per class", QgsProcessingParameterNumber.Integer, 5000, minValue=1),
        QgsProcessingParameterNumber("N_ESTIMATORS", "Number of trees", QgsProcessingParameterNumber.Integer, 300, minValue=1),
    ]
    for i, definition in enumerate(definitions):
        definition.setHelp(HELP[definition.name()])  # the dialog's tooltip
        component = QgsProcessingModelParameter(definition.name())
        component.setPosition(QPointF(120 + 220 * (i % 6), 60 + 80 * (i // 6)))
        model.addModelParameter(definition, component)
        if definition.name() in ("COLLECTION", "MAX_CLOUD", "STEP_DAYS", "SAMPLES_PER_CLASS", "N_ESTIMATORS"):
            definition = model.parameterDefinition(definition.name())
            definition.setFlags(definition.flags() | definition.FlagAdvanced)
    model.setParameterOrder([definition.name() for definition in definitions])  # the dialog's order (else alphabetical)

    P, C, S = Source.fromModelParameter, Source.fromChildOutput, Source.fromStaticValue
    steps = [
        ("grid", "creategrid", "Create patch grid", {"AOI": P("AOI"), "PATCH_SIZE": P("PATCH_SIZE"), "RESOLUTION": S(10.0), "BUFFER": S(0)}, {}),
        (
            "download",
            "download",
            "Download Sentinel-2 time series",
            {
                "PATCHES": C("grid", "OUTPUT"),
                "PATCH_ID": P("PATCH_ID"),
                "START_DATE": P("START_DATE"),
                "END_DATE": P("END_DATE"),
                "MAX_CLOUD": P("MAX_CLOUD"),
                "STAC_URL": P("STAC_URL"),
                "COLLECTION": P("COLLECTION"),
            },
            {},
        ),
        (
            "clouds",
            "cloudmasks",
            "Cloud masks",
            {"INPUT": C("download", "OUTPUT"), "METHOD": S(0), "THRESHOLD": S(0.4), "AVERAGE_OVER": S(4), "DILATION": S(2), "SCL_CLASSES": S("3,8,9,10")},
            {},
        ),
        ("filter", "filterscenes", "Filter cloudy scenes", {"INPUT": C("download", "OUTPUT"), "MASK": C("clouds", "OUTPUT"), "MIN_VALID_FRACTION": S(0.8)}, {}),
        (
            "interpolate",
            "interpolate",
            "Temporal interpolation",
            {
                "INPUT": C("filter", "OUTPUT"),
                "MASK": C("filter", "OUTPUT_MASK"),
                "STEP_DAYS": P("STEP_DAYS"),
                "START_DATE": P("START_DATE"),
                "END_DATE": P("END_DATE"),
            },
            {},
        ),
        (
            "reference",
            "rasterizereference",
            "Rasterize reference",
            {"REFERENCE": P("REFERENCE"), "FIELD": P("REFERENCE_FIELD"), "GRID": C("interpolate", "OUTPUT"), "EROSION": S(1)},
            {},
        ),
        (
            "train",
            "train",
            "Train classifier",
            {
                "INPUT": C("interpolate", "OUTPUT"),
                "REFERENCE": C("reference", "OUTPUT"),
                "SAMPLES_PER_CLASS": P("SAMPLES_PER_CLASS"),
                "TEST_FRACTION": S(0.25),
                "SPLIT": S(0),
                "DROP_EMPTY_CLASSES": S(True),
                "SEED": S(42),
                "N_ESTIMATORS": P("N_ESTIMATORS"),
                "NUM_LEAVES": S(31),
                "LEARNING_RATE": S(0.1),
            },
            {"OUTPUT_MODEL": "MODEL"},
        ),
        (
            "classify",
            "classify",
            "Classify",
            {"INPUT": C("interpolate", "OUTPUT"), "MODEL": C("train", "OUTPUT_MODEL"), "BLOCK_ROWS": S(256)},
            {"OUTPUT": "MAP"},
        ),
        (
            "report",
            "accuracyreport",
            "Accuracy report",
            {"PREDICTIONS": C("train", "OUTPUT_PREDICTIONS"), "MODEL": C("train", "OUTPUT_MODEL")},
            {"OUTPUT_HTML": "REPORT_HTML", "OUTPUT_JSON": "REPORT_JSON"},
        ),
    ]
    for i, (child_id, alg, description, sources, outputs) in enumerate(steps):
        child = QgsProcessingModelChildAlgorithm(f"landcover:{alg}")
        child.setChildId(child_id)
        child.setDescription(description)
        child.setPosition(QPointF(200 + 260 * (i % 5), 260 + 160 * (i // 5)))
        for name, source in {**defaults_of(alg), **sources}.items():
            child.addParameterSources(name, [source])
        model_outputs = {}
        for child_output, model_name in outputs.items():
            output = QgsProcessingModelOutput(model_name, model_name)
            output.setChildId(child_id)
            output.setChildOutputName(child_output)
            output.setPosition(QPointF(child.position().x() + 120, child.position().y() + 70))
            model_outputs[model_name] = output
        child.setModelOutputs(model_outputs)
        model.addChildAlgorithm(child)
    inputs = {name: with_default(text, model.parameterDefinition(name)) for name, text in HELP.items()}
    model.setHelpContent({"ALG_DESC": DESCRIPTION, "ALG_CREATOR": "lc-plugin", **inputs})
    return model


def with_default(text: str, definition) -> str:
    """An input's help followed by its default, read from its definition (so it is stated once, there)."""
    from landcover.algorithms.help_text import default_text

    default = default_text(definition)
    return f"{text} Default: {default}." if default else text


def defaults_of(alg: str) -> dict:
    """Every input of a step with a default, as a static value: a step's required parameters are then
    all set (the modeler calls a model with an unset one invalid), including parameters added later."""
    from qgis.core import QgsApplication
    from qgis.core import QgsProcessingModelChildParameterSource as Source

    algorithm = QgsApplication.processingRegistry().algorithmById(f"landcover:{alg}")
    return {
        definition.name(): Source.fromStaticValue(definition.defaultValue())
        for definition in algorithm.parameterDefinitions()
        if not definition.isDestination() and definition.defaultValue() is not None
    }


def main() -> None:
    from qgis.core import QgsApplication

    app = QgsApplication([], False)
    app.initQgis()
    from processing.core.Processing import Processing

    Processing.initialize()
    plugins = os.path.join(ROOT, "build", "plugins")
    os.makedirs(plugins, exist_ok=True)
    link = os.path.join(plugins, "landcover")
    if not os.path.exists(link):
        os.symlink(ROOT, link)
    sys.path.insert(0, plugins)
    import landcover

    plugin = landcover.classFactory(None)
    plugin.initProcessing()
    model = build()
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    if not model.toFile(OUT):
        raise SystemExit(f"could not write {OUT}")
    sys.stderr.write(f"wrote {OUT}\n")
    plugin.unload()


if __name__ == "__main__":
    main()
