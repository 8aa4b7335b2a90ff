"""Background tasks of the workbench: the scene search and the run, each step a Processing algorithm.

Why one QgsTask for the run rather than one QgsProcessingAlgRunnerTask per step: each step's
parameters depend on the previous step's outputs, and the chain (lc_plugin.runs.workflow) is plain
Python; the task runs it in QGIS's task manager thread, runs every step as the algorithm from the
Processing registry (``QgsProcessingAlgorithm.run``, as Processing's own runner task does) and
tells the dock, through queued signals, which step runs, how far it is and which result to load.
"""

from __future__ import annotations

import json

from qgis.core import QgsApplication, QgsProcessingContext, QgsProcessingException, QgsProcessingFeedback, QgsTask
from qgis.PyQt.QtCore import pyqtSignal

from ..lc_plugin.core.errors import Cancelled, LandCoverError
from ..lc_plugin.runs.workflow import WorkbenchSettings, run_workbench


class StepFeedback(QgsProcessingFeedback):
    """Processing feedback that also passes the step's messages to the dock's log."""

    def __init__(self, log) -> None:
        super().__init__()
        self._log = log

    def pushInfo(self, info: str) -> None:  # noqa: N802
        self._log(info)
        super().pushInfo(info)

    def reportError(self, error: str, fatalError: bool = False) -> None:  # noqa: N802, N803
        self._log(error)
        super().reportError(error, fatalError)


class WorkbenchTask(QgsTask):
    """Runs the workbench chain; ``result`` (dict) or ``error`` (str) once finished."""

    stepStarted = pyqtSignal(int, str)  # noqa: N815 - Qt signal naming
    stepProgress = pyqtSignal(float)  # noqa: N815
    resultReady = pyqtSignal(str, str)  # noqa: N815
    command = pyqtSignal(str, str, str)  # Python command, algorithm id, parameters JSON: for Processing's history
    log = pyqtSignal(str)

    def __init__(self, settings: WorkbenchSettings, preview: bool) -> None:
        super().__init__("Land cover: preview" if preview else "Land cover: run", QgsTask.Flag.CanCancel)
        self.settings = settings
        self.preview = preview
        self.result: dict | None = None
        self.error: str | None = None
        self.steps = 0
        self.feedback: QgsProcessingFeedback | None = None

    def run(self) -> bool:
        try:
            self.result = run_workbench(self.run_step, self.settings, self.settings.output_folder, self.resultReady.emit, self.preview)
            return True
        except Cancelled:
            self.error = "Cancelled; the steps already finished keep their outputs."
        except (QgsProcessingException, LandCoverError) as exc:
            self.error = str(exc)
        except Exception as exc:  # noqa: BLE001 - a task must not take QGIS down; the dock shows the message
            self.error = f"{type(exc).__name__}: {exc}"
        return False

    def run_step(self, alg_id: str, params: dict, label: str) -> dict:
        if self.isCanceled():
            raise Cancelled("cancelled by the user")
        self.steps += 1
        self.stepStarted.emit(self.steps, label)
        algorithm = QgsApplication.processingRegistry().createAlgorithmById(f"landcover:{alg_id}")
        self.feedback = StepFeedback(self.log.emit)
        self.feedback.progressChanged.connect(self.stepProgress.emit)
        context = QgsProcessingContext()
        self.command.emit(algorithm.asPythonCommand(params, context), algorithm.id(), json.dumps(params))
        results, ok = algorithm.run(params, context, self.feedback, {}, False)
        if self.isCanceled():
            raise Cancelled("cancelled by the user")
        if not ok:
            raise QgsProcessingException(f"{label} failed.")
        return results

    def cancel(self) -> None:
        if self.feedback is not None:
            self.feedback.cancel()
        super().cancel()


def add_to_history(command: str, algorithm_id: str, parameters: str) -> None:
    """Put a step in Processing's history, as a dialog run does (main thread only).

    QGIS before 3.32 keeps it in Processing's own log (ProcessingLog); later versions, and QGIS 4,
    in the "processing" provider of QgsGui's history registry.
    """
    try:
        from processing.core.ProcessingLog import ProcessingLog
    except ImportError:
        from qgis.gui import QgsGui

        QgsGui.historyProviderRegistry().addEntry("processing", {"python_command": command, "algorithm_id": algorithm_id, "parameters": json.loads(parameters)})
    else:
        ProcessingLog.addToLog(command)


def scene_search_task(search, on_done) -> QgsTask:
    """A task that calls ``search()`` off the main thread and ``on_done(error, rows)`` back on it."""

    def work(_task):
        return search()

    def finished(exception, rows=None):
        on_done(exception, rows)

    return QgsTask.fromFunction("Land cover: list scenes", work, on_finished=finished)
