"""Every algorithm is documented where users look: help text naming each parameter, icon, group, help URL."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
ALGORITHM_IDS = [
    "creategrid",
    "download",
    "importproducts",
    "buildstack",
    "downloadolci",
    "cloudmasks",
    "filterscenes",
    "interpolate",
    "rasterizereference",
    "train",
    "exportdataset",
    "trainsegmentation",
    "classify",
    "accuracyreport",
    "mosaic",
    "splitstack",
    "validcount",
    "sampledesign",
    "areaestimate",
    "rungrid",
]


def _algorithms():
    from qgis.core import QgsApplication

    return QgsApplication.processingRegistry().providerById("landcover").algorithms()


def readme_anchors() -> set[str]:
    """GitHub-style anchors of the README's headings plus explicit <a id> / <a name> anchors."""
    text = README.read_text(encoding="utf-8")
    anchors = set(re.findall(r'<a (?:id|name)="([^"]+)"', text))
    for heading in re.findall(r"^#+ (.+)$", text, flags=re.MULTILINE):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        anchors.add(slug)
    return anchors


def test_every_parameter_is_documented_in_the_help(qgis_app):
    algorithms = _algorithms()
    assert set(ALGORITHM_IDS) <= {a.name() for a in algorithms}  # other algorithms are checked the same way
    missing = []
    for algorithm in algorithms:
        help_text = algorithm.shortHelpString()
        assert "Example" in help_text and "qgis_process run landcover:" + algorithm.name() in help_text, algorithm.name()
        assert "default" in help_text.lower(), algorithm.name()
        for parameter in algorithm.parameterDefinitions():
            if not re.search(rf"\b{re.escape(parameter.name())}\b", help_text):
                missing.append(f"{algorithm.name()}:{parameter.name()}")
    assert not missing, f"parameters missing from shortHelpString: {missing}"


def test_icon_group_and_help_url_point_somewhere_real(qgis_app):
    anchors = readme_anchors()
    groups = {"data", "preparation", "training", "classification", "validation"}
    for algorithm in _algorithms():
        assert not algorithm.icon().isNull(), algorithm.name()
        assert algorithm.groupId() in groups and algorithm.group().startswith("Land cover — "), algorithm.name()
        url = algorithm.helpUrl()
        assert url.startswith("https://") and "#" in url, url
        assert url.split("#", 1)[1] in anchors, f"{algorithm.name()}: README has no anchor for {url}"


def test_dialog_defaults_need_only_the_required_inputs(qgis_app):
    """Every optional or advanced parameter has a default (or is optional), so a dialog run with only
    the required inputs is valid; advanced knobs are flagged advanced."""
    from qgis.core import QgsProcessingParameterDefinition

    advanced = QgsProcessingParameterDefinition.FlagAdvanced
    optional = QgsProcessingParameterDefinition.FlagOptional
    for algorithm in _algorithms():
        for parameter in algorithm.parameterDefinitions():
            if parameter.flags() & advanced:
                assert parameter.defaultValue() is not None or parameter.flags() & optional, f"{algorithm.name()}:{parameter.name()}"
    by_name = {a.name(): a for a in _algorithms()}
    flagged = {(alg, p.name()) for alg, a in by_name.items() for p in a.parameterDefinitions() if p.flags() & advanced}
    for expected in [
        ("train", "SEED"),
        ("train", "N_ESTIMATORS"),
        ("classify", "BLOCK_ROWS"),
        ("cloudmasks", "THRESHOLD"),
        ("download", "COLLECTION"),
        ("creategrid", "BUFFER"),
    ]:
        assert expected in flagged, expected


def test_metadata_is_complete_for_the_plugin_repository():
    import configparser

    parser = configparser.ConfigParser()
    parser.read(README.parent / "metadata.txt", encoding="utf-8")
    general = parser["general"]
    for key in (
        "name",
        "qgisMinimumVersion",
        "description",
        "about",
        "version",
        "author",
        "email",
        "homepage",
        "tracker",
        "repository",
        "tags",
        "icon",
        "changelog",
        "hasProcessingProvider",
    ):
        assert general.get(key, "").strip(), key
    assert general["qgisMinimumVersion"] == "3.22"
    assert (README.parent / general["icon"]).is_file()
    assert general["tracker"].startswith("https://") and general["repository"].startswith("https://")


def test_only_the_data_itself_is_required(qgis_app):
    """A dialog run needs only the inputs that are data (layers, files, fields) and the period to download:
    every required number, choice, flag or text has a default."""
    from qgis.core import QgsProcessingParameterDefinition

    optional = QgsProcessingParameterDefinition.FlagOptional
    allowed = {("download", "START_DATE"), ("download", "END_DATE")}
    missing = []
    for algorithm in _algorithms():
        for parameter in algorithm.parameterDefinitions():
            if parameter.isDestination() or parameter.flags() & optional:
                continue
            if parameter.type() in ("number", "enum", "boolean", "string", "distance") and parameter.defaultValue() is None:
                if (algorithm.name(), parameter.name()) not in allowed:
                    missing.append(f"{algorithm.name()}:{parameter.name()}")
    assert not missing, f"required parameters without a default: {missing}"
