"""What decides a grid run's outputs: ``BatchParameters``, saved as ``parameters.json`` in the run folder.

Two hashes of them mark a patch's results as current: ``digest`` (everything that changes the class map)
and ``prepare_digest`` (what changes the stacks and reference, the model excluded), so a rerun with
another model reuses the prepared stacks.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, fields

from ..core.atomic import atomic_output
from ..core.errors import InputError
from ..core.redaction import redact_url
from ..timeseries.cloud_resolution import DEFAULT_PROCESSING_RESOLUTION
from ..timeseries.scenes import DEFAULT_MIN_VALID_FRACTION

PARAMETERS_FILE = "parameters.json"
CLOUD_METHODS = ["auto", "s2cloudless", "scl"]
# Patch selection, threads and which intermediate files are kept do not change a patch's results.
_NOT_IN_DIGEST = ("patch_ids", "download_threads", "keep_intermediates")


@dataclass
class BatchParameters:
    """Everything that decides a patch's outputs (saved as ``parameters.json`` in the run folder)."""

    grid: str
    start: str
    end: str
    model: str | None = None
    stac_url: str = "https://earth-search.aws.element84.com/v1"
    collection: str = "sentinel-2-l2a"
    bands: list[str] = field(default_factory=lambda: ["B02", "B03", "B04", "B08", "B11", "B12", "SCL"])
    max_cloud: float = 80.0
    cloud_method: str = "auto"
    min_valid_fraction: float = DEFAULT_MIN_VALID_FRACTION
    step_days: int = 16
    reference: str | None = None
    reference_field: str | None = None
    reference_zero: str = "refuse"  # class id 0 in the field (reference.ClassOptions.zero)
    reference_legend: str = "none"  # a built-in legend chosen for the reference (legends.LEGEND_CHOICES)
    erosion_px: int = 0
    grid_layer: str | None = None
    patch_ids: list[str] | None = None
    download_threads: int = 4
    cloud_resolution: float = DEFAULT_PROCESSING_RESOLUTION
    keep_intermediates: bool = False

    def public(self) -> dict:
        """The parameters as files and reports show them: the STAC URL without its secrets."""
        return {**asdict(self), "stac_url": redact_url(self.stac_url)}

    def to_json(self) -> str:
        return json.dumps(self.public(), indent=2, sort_keys=True)

    def digest(self) -> str:
        """Hash of what decides the outputs (patch selection, threads and kept intermediate files excluded; a
        rotated token in the STAC URL reads the same scenes, so the hash sees the redacted URL)."""
        return digest_of({k: v for k, v in self.public().items() if k not in _NOT_IN_DIGEST})

    def prepare_digest(self) -> str:
        """Hash of what decides a patch's stacks and reference (the model excluded)."""
        return digest_of({k: v for k, v in self.public().items() if k not in (*_NOT_IN_DIGEST, "model")})

    def save(self, path: str) -> None:
        with atomic_output(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
            f.write(self.to_json())

    @classmethod
    def load(cls, parameters_file: str) -> BatchParameters:
        """Parameters from a JSON file (e.g. a previous run's ``parameters.json``)."""
        data = _read_object(parameters_file)
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        expected = "expected the parameters.json of an earlier run"
        if unknown:
            raise InputError(f"Unknown entries in the parameters file {parameters_file}: {', '.join(unknown)}; {expected}.", "parameters_file")
        defaults = cls(grid="", start="", end="")
        for name, value in data.items():
            default = getattr(defaults, name)
            kind = (int, float) if isinstance(default, float) else type(default)
            if default is not None and value is not None and not isinstance(value, kind):
                raise InputError(
                    f"The parameters file {parameters_file} gives {name} = {value!r}; expected a {type(default).__name__}.", "parameters_file"
                )
        return cls(**{"grid": "", "start": "", "end": "", **data})

    def check(self) -> None:
        """Refuse parameters no patch could run with, before any patch starts."""
        if self.cloud_method not in CLOUD_METHODS:
            raise InputError(f"Unknown cloud-mask method '{self.cloud_method}'; choose one of {', '.join(CLOUD_METHODS)}.", "cloud_method")
        if self.model and not os.path.isfile(self.model):
            raise InputError(f"The model {self.model} does not exist; choose an ONNX model made by the Train step.", "model")
        if not os.path.exists(self.grid):
            raise InputError(f"The grid {self.grid} does not exist; make one with Create patch grid.", "grid")
        if self.reference and not self.reference_field:
            raise InputError("A reference layer needs its class field.", "reference_field")
        if int(self.step_days) < 1:
            raise InputError(f"The interpolation step must be at least 1 day, got {self.step_days}.", "step_days")


def _read_object(parameters_file: str) -> dict:
    """The JSON object a parameters file holds; InputError for anything else."""
    expected = "expected the parameters.json of an earlier run"
    try:
        with open(parameters_file, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as exc:
        raise InputError(f"Cannot read the parameters file {parameters_file} ({exc}); {expected}.", "parameters_file") from None
    if not isinstance(data, dict):
        raise InputError(f"The parameters file {parameters_file} holds a {type(data).__name__}, not an object; {expected}.", "parameters_file")
    return data


def digest_of(data: dict) -> str:
    """A short, stable hash of JSON-able data (key order does not matter)."""
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
