"""core: what every step shares and nothing else: errors, the progress/cancel monitor, atomic outputs,
optional dependencies, class tables and legends, band kinds, secret redaction."""

from .atomic import atomic_output, check_not_input
from .classes import ClassTable, LandCoverClass, merge_class_tables
from .errors import Cancelled, DataError, DependencyError, InputError, LandCoverError, ServiceError
from .monitor import Monitor

__all__ = [
    "Cancelled",
    "ClassTable",
    "DataError",
    "DependencyError",
    "InputError",
    "LandCoverClass",
    "LandCoverError",
    "Monitor",
    "ServiceError",
    "atomic_output",
    "check_not_input",
    "merge_class_tables",
]
