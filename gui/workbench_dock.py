"""The "Land cover" dock: from an area on the canvas to a validated map in one panel.

What the user chooses here becomes a ``WorkbenchSettings`` (lc_plugin.runs.workflow); Run and Preview
hand it to a background task that executes the chain as Processing algorithms; each result is
loaded, styled from its own metadata, as soon as it is written; the accuracy report opens at the
end. The settings are kept in the project (and as ``settings.json`` + a rungrid
``parameters.json`` in the output folder).
"""

from __future__ import annotations

import os

from qgis.core import (
    QgsApplication,
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsNetworkAccessManager,
    QgsProject,
    QgsRasterLayer,
    QgsRectangle,
    QgsVectorLayer,
)
from qgis.gui import QgsDockWidget, QgsFieldComboBox, QgsFileWidget, QgsMapCanvas, QgsMapLayerComboBox, QgsMapToolExtent
from qgis.PyQt.QtCore import QDate, Qt, QUrl
from qgis.PyQt.QtGui import QColor, QDesktopServices, QPixmap
from qgis.PyQt.QtNetwork import QNetworkReply, QNetworkRequest
from qgis.PyQt.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDateEdit,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QRadioButton,
    QScrollArea,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from ..algorithms.styling import apply_style, raster_info
from ..lc_plugin.core.errors import LandCoverError
from ..lc_plugin.runs.parameters import CLOUD_METHODS
from ..lc_plugin.runs.workflow import SOURCES, STAC_PRESETS, WorkbenchSettings, list_scenes, reference_legend, write_area
from .compat import POLYGON_LAYERS
from .tasks import WorkbenchTask, add_to_history, scene_search_task

PROJECT_SCOPE, PROJECT_KEY = "landcover", "workbench"
AREA_MODES = ["layer", "extent", "drawn"]
SOURCE_LABELS = ["STAC API", "Sentinel Hub", "Local time stacks"]
PRESET_LABELS = ["URL below", "Earth Search", "Planetary Computer", "Copernicus Data Space"]
GROUP_NAME = "Land cover run"


def _file_path(layer) -> str:
    return layer.source().split("|")[0] if layer is not None else ""


class LandCoverDock(QgsDockWidget):
    """The workbench panel. ``profile_dock`` (optional) gets the run's layers for pixel profiles."""

    def __init__(self, canvas: QgsMapCanvas, profile_dock=None, parent: QWidget | None = None) -> None:
        super().__init__("Land cover", parent)
        self.setObjectName("LandCoverWorkbench")
        self.canvas = canvas
        self.profile_dock = profile_dock
        self.drawn: QgsRectangle | None = None
        self.drawn_crs = QgsCoordinateReferenceSystem()
        self.scenes: list = []
        self.task: WorkbenchTask | None = None
        self.search_task = None
        self.loaded: dict[str, list] = {}  # LC_KIND → layers loaded by the last run
        self.report: str | None = None
        self.open_report = lambda path: QDesktopServices.openUrl(QUrl.fromLocalFile(path))
        self.extent_tool = QgsMapToolExtent(canvas)
        self.extent_tool.extentChanged.connect(self.set_drawn_area)

        body = QWidget()
        layout = QVBoxLayout(body)
        for group in (self._area_group(), self._source_group(), self._scenes_group(), self._reference_group(), self._classifier_group(), self._run_group()):
            layout.addWidget(group)
        layout.addStretch(1)
        scroll = QScrollArea(self)
        scroll.setWidgetResizable(True)
        scroll.setWidget(body)
        self.setWidget(scroll)
        self.setMinimumWidth(380)
        QgsProject.instance().writeProject.connect(self.save_to_project)
        QgsProject.instance().readProject.connect(self.load_from_project)

    def disconnect_project(self) -> None:
        """Stop following project saves and loads and give the map tool back (the plugin is being unloaded)."""
        if self.canvas.mapTool() is self.extent_tool:
            self.canvas.unsetMapTool(self.extent_tool)
        for signal, slot in ((QgsProject.instance().writeProject, self.save_to_project), (QgsProject.instance().readProject, self.load_from_project)):
            try:
                signal.disconnect(slot)
            except (TypeError, RuntimeError):
                pass

    # --- building the panel ------------------------------------------------------------------------

    def _area_group(self) -> QGroupBox:
        group = QGroupBox("Area and dates")
        form = QFormLayout(group)
        self.area_buttons = QButtonGroup(group)
        row = QVBoxLayout()
        for i, label in enumerate(["Area from a polygon layer", "The canvas extent", "A rectangle drawn on the map"]):
            button = QRadioButton(label, group)
            self.area_buttons.addButton(button, i)
            row.addWidget(button)
        self.area_buttons.button(0).setChecked(True)
        form.addRow(row)
        self.area_layer = QgsMapLayerComboBox(group)
        self.area_layer.setFilters(POLYGON_LAYERS)
        form.addRow("Area layer", self.area_layer)
        self.draw_button = QPushButton("Draw", group)
        self.draw_button.setToolTip("Drag a rectangle on the map")
        self.draw_button.clicked.connect(lambda: self.canvas.setMapTool(self.extent_tool))
        self.drawn_label = QLabel("no rectangle drawn", group)
        form.addRow(self.draw_button, self.drawn_label)
        self.start = self._date_edit(group, QDate(QDate.currentDate().year() - 1, 1, 1))
        self.end = self._date_edit(group, QDate(QDate.currentDate().year() - 1, 12, 31))
        form.addRow("Start date", self.start)
        form.addRow("End date", self.end)
        return group

    @staticmethod
    def _date_edit(parent: QWidget, date: QDate) -> QDateEdit:
        edit = QDateEdit(date, parent)
        edit.setDisplayFormat("yyyy-MM-dd")
        edit.setCalendarPopup(True)
        return edit

    def _source_group(self) -> QGroupBox:
        group = QGroupBox("Source")
        layout = QVBoxLayout(group)
        self.source = QComboBox(group)
        self.source.addItems(SOURCE_LABELS)
        layout.addWidget(self.source)
        defaults = WorkbenchSettings()
        stac, self.stac_box = self._box(group)
        self.preset = QComboBox(group)
        self.preset.addItems(PRESET_LABELS)
        self.stac_url = QLineEdit(defaults.stac_url, group)
        self.collection = QLineEdit(defaults.collection, group)
        stac.addRow("Preset", self.preset)
        stac.addRow("STAC API URL", self.stac_url)
        stac.addRow("Collection", self.collection)
        sh, self.sh_box = self._box(group)
        self.sh_endpoint = QLineEdit(defaults.sh_endpoint, group)
        self.authcfg = QLineEdit(group)
        self.authcfg.setPlaceholderText("empty: SH_CLIENT_ID/SH_CLIENT_SECRET")
        self.authcfg.setToolTip("The id of a QGIS authentication configuration (Basic: client id / client secret)")
        sh.addRow("Endpoint", self.sh_endpoint)
        sh.addRow("Authentication id", self.authcfg)
        local, self.local_box = self._box(group)
        self.local_stacks = QgsFileWidget(group)
        self.local_stacks.setStorageMode(QgsFileWidget.StorageMode.GetMultipleFiles)
        self.local_stacks.setFilter("GeoTIFF (*.tif *.tiff)")
        local.addRow("Time stacks", self.local_stacks)
        for box in (self.stac_box, self.sh_box, self.local_box):
            layout.addWidget(box)
        common = QFormLayout()
        self.max_cloud = self._spin(QDoubleSpinBox(group), 0, 100, defaults.max_cloud)
        common.addRow("Max scene cloud cover (%)", self.max_cloud)
        layout.addLayout(common)
        self.source.currentIndexChanged.connect(self.show_source_fields)
        self.show_source_fields()
        return group

    @staticmethod
    def _box(parent: QWidget) -> tuple[QFormLayout, QWidget]:
        box = QWidget(parent)
        form = QFormLayout(box)
        form.setContentsMargins(0, 0, 0, 0)
        return form, box

    def show_source_fields(self, *_args) -> None:
        """Only the fields of the chosen source are shown."""
        for i, box in enumerate((self.stac_box, self.sh_box, self.local_box)):
            box.setVisible(self.source.currentIndex() == i)

    def _scenes_group(self) -> QGroupBox:
        group = QGroupBox("Scenes (untick those to leave out)")
        layout = QVBoxLayout(group)
        self.list_button = QPushButton("List scenes", group)
        self.list_button.clicked.connect(self.list_scenes)
        self.scene_table = QTableWidget(0, 3, group)
        self.scene_table.setHorizontalHeaderLabels(["Date", "Cloud %", "Tiles"])
        self.scene_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.scene_table.setMinimumHeight(140)
        self.scene_table.verticalHeader().setVisible(False)
        self.scene_status = QLabel(group)
        self.quicklook = QLabel(group)  # the selected date's quick-look, where the catalogue has one
        self.quicklook.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.quicklook_reply = None
        self.scene_table.currentCellChanged.connect(self.show_quicklook)
        for widget in (self.list_button, self.scene_table, self.scene_status, self.quicklook):
            layout.addWidget(widget)
        return group

    def _reference_group(self) -> QGroupBox:
        group = QGroupBox("Reference")
        form = QFormLayout(group)
        self.reference = QgsMapLayerComboBox(group)
        self.reference.setFilters(POLYGON_LAYERS)
        self.reference.setAllowEmptyLayer(True)
        self.reference_field = QgsFieldComboBox(group)
        self.reference.layerChanged.connect(self.reference_field.setLayer)
        self.reference_field.fieldChanged.connect(self.show_legend)
        form.addRow("Reference polygons", self.reference)
        form.addRow("Class field", self.reference_field)
        self.legend_classes = None  # the table Rasterize reference will embed, before the user's edits
        self.legend = QTableWidget(0, 3, group)
        self.legend.setHorizontalHeaderLabels(["Id", "Class (editable)", "Colour"])
        self.legend.itemChanged.connect(self.paint_legend_row)
        self.legend.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.legend.setMinimumHeight(120)
        self.legend.verticalHeader().setVisible(False)
        self.legend.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        form.addRow("Legend", self.legend)
        self.legend.setToolTip("Rename a class or give it another colour (#rrggbb): the reference rasters, the model and the maps carry it")
        return group

    def _classifier_group(self) -> QGroupBox:
        group = QGroupBox("Processing and classifier")
        form = QFormLayout(group)
        d = WorkbenchSettings()
        self.patch_size = self._spin(QSpinBox(group), 10, 10000, d.patch_size)
        self.cloud_method = QComboBox(group)
        self.cloud_method.addItems(CLOUD_METHODS)
        self.min_valid = self._spin(QDoubleSpinBox(group), 0, 1, d.min_valid_fraction, step=0.05)
        self.step_days = self._spin(QSpinBox(group), 1, 366, d.step_days)
        self.samples = self._spin(QSpinBox(group), 10, 1_000_000, d.samples_per_class)
        self.trees = self._spin(QSpinBox(group), 1, 10000, d.n_estimators)
        self.split = QComboBox(group)
        self.split.addItems(["test pixels at random", "whole patches held out"])
        self.model = QgsFileWidget(group)
        self.model.setFilter("ONNX model (*.onnx)")
        self.min_pixels = self._spin(QSpinBox(group), 0, 100000, d.min_pixels)
        self.output_folder = QgsFileWidget(group)
        self.output_folder.setStorageMode(QgsFileWidget.StorageMode.GetDirectory)
        for label, widget in [
            ("Patch size (pixels)", self.patch_size),
            ("Cloud mask method", self.cloud_method),
            ("Min clear fraction per date", self.min_valid),
            ("Interpolation step (days)", self.step_days),
            ("Samples per class", self.samples),
            ("Number of trees", self.trees),
            ("Test split", self.split),
            ("Existing model (instead of training)", self.model),
            ("Sieve: minimum patch (pixels, 0 = off)", self.min_pixels),
            ("Output folder", self.output_folder),
        ]:
            form.addRow(label, widget)
        return group

    @staticmethod
    def _spin(spin, low, high, value, step=None):
        spin.setRange(low, high)
        if step is not None:
            spin.setDecimals(2)
            spin.setSingleStep(step)
        spin.setValue(value)
        return spin

    def _run_group(self) -> QGroupBox:
        group = QGroupBox("Run")
        layout = QVBoxLayout(group)
        row = QHBoxLayout()
        self.preview_button = QPushButton("Preview", group)
        self.preview_button.setToolTip("Run the chain on the patch at the centre of the area only")
        self.run_button = QPushButton("Run", group)
        self.cancel_button = QPushButton("Cancel", group)
        self.cancel_button.setEnabled(False)
        self.preview_button.clicked.connect(lambda: self.start_run(preview=True))
        self.run_button.clicked.connect(lambda: self.start_run(preview=False))
        self.cancel_button.clicked.connect(self.cancel)
        for button in (self.preview_button, self.run_button, self.cancel_button):
            row.addWidget(button)
        layout.addLayout(row)
        row = QHBoxLayout()
        self.load_button = QPushButton("Load settings…", group)
        self.load_button.clicked.connect(self.load_settings_file)
        row.addWidget(self.load_button)
        layout.addLayout(row)
        self.step_label = QLabel("Ready", group)
        self.progress = QProgressBar(group)
        self.progress.setRange(0, 100)
        self.log = QPlainTextEdit(group)
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(120)
        for widget in (self.step_label, self.progress, self.log):
            layout.addWidget(widget)
        return group

    # --- settings --------------------------------------------------------------------------------

    def area_mode(self) -> str:
        return AREA_MODES[max(self.area_buttons.checkedId(), 0)]

    def area_bounds(self) -> tuple[QgsRectangle, QgsCoordinateReferenceSystem]:
        """The area's rectangle and CRS, whichever way it was given."""
        mode = self.area_mode()
        if mode == "layer":
            layer = self.area_layer.currentLayer()
            if layer is None:
                raise LandCoverError("Choose the area layer, or use the canvas extent or a drawn rectangle.", "AOI")
            return layer.extent(), layer.crs()
        if mode == "drawn":
            if self.drawn is None:
                raise LandCoverError("Draw a rectangle on the map first (Draw a rectangle on the map).", "AOI")
            return self.drawn, self.drawn_crs
        return self.canvas.extent(), self.canvas.mapSettings().destinationCrs()

    def settings(self, write_area_file: bool = False) -> WorkbenchSettings:
        """The panel's choices; with ``write_area_file`` a rectangle area is written to the output folder."""
        items = [self.scene_table.item(r, 0) for r in range(self.scene_table.rowCount())]
        excluded = [item.text() for item in items if item.checkState() != Qt.CheckState.Checked]
        reference = self.reference.currentLayer()
        s = WorkbenchSettings(
            aoi=_file_path(self.area_layer.currentLayer()) if self.area_mode() == "layer" else "",
            start=self.start.date().toString("yyyy-MM-dd"),
            end=self.end.date().toString("yyyy-MM-dd"),
            source=SOURCES[self.source.currentIndex()],
            stac_preset=STAC_PRESETS[self.preset.currentIndex()],
            stac_url=self.stac_url.text().strip(),
            collection=self.collection.text().strip(),
            sh_endpoint=self.sh_endpoint.text().strip(),
            authcfg=self.authcfg.text().strip(),
            local_stacks=QgsFileWidget.splitFilePaths(self.local_stacks.filePath()) if self.local_stacks.filePath() else [],
            max_cloud=self.max_cloud.value(),
            excluded_dates=excluded,
            patch_size=self.patch_size.value(),
            cloud_method=self.cloud_method.currentText(),
            min_valid_fraction=self.min_valid.value(),
            step_days=self.step_days.value(),
            reference=_file_path(reference),
            reference_field=self.reference_field.currentField() if reference is not None else "",
            model=self.model.filePath(),
            samples_per_class=self.samples.value(),
            n_estimators=self.trees.value(),
            split=self.split.currentIndex(),
            min_pixels=self.min_pixels.value(),
            output_folder=self.output_folder.filePath(),
            legend=self.legend_edits() if reference is not None else [],
        )
        if write_area_file and s.source != "local" and self.area_mode() != "layer":
            rect, crs = self.area_bounds()
            if not s.output_folder:
                raise LandCoverError("Choose the output folder.", "OUTPUT_FOLDER")
            bounds = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
            s.aoi = write_area(bounds, crs.authid() or crs.toWkt(), os.path.join(s.output_folder, "area.gpkg"))
        return s

    def apply(self, s: WorkbenchSettings) -> None:
        """Show saved settings in the panel (layers are matched by their file)."""
        for edit, text in ((self.start, s.start), (self.end, s.end)):
            if text:
                edit.setDate(QDate.fromString(text, "yyyy-MM-dd"))
        self.source.setCurrentIndex(SOURCES.index(s.source) if s.source in SOURCES else 0)
        self.preset.setCurrentIndex(STAC_PRESETS.index(s.stac_preset) if s.stac_preset in STAC_PRESETS else 0)
        self.stac_url.setText(s.stac_url)
        self.collection.setText(s.collection)
        self.sh_endpoint.setText(s.sh_endpoint)
        self.authcfg.setText(s.authcfg)
        self.local_stacks.setFilePath(" ".join(f'"{p}"' for p in s.local_stacks))
        self.max_cloud.setValue(s.max_cloud)
        self.patch_size.setValue(s.patch_size)
        self.cloud_method.setCurrentText(s.cloud_method)
        self.min_valid.setValue(s.min_valid_fraction)
        self.step_days.setValue(s.step_days)
        self.samples.setValue(s.samples_per_class)
        self.trees.setValue(s.n_estimators)
        self.split.setCurrentIndex(s.split)
        self.model.setFilePath(s.model)
        self.min_pixels.setValue(s.min_pixels)
        self.output_folder.setFilePath(s.output_folder)
        area = self._layer_for(s.aoi, "Area")
        if area is not None:
            self.area_layer.setLayer(area)
            self.area_buttons.button(0).setChecked(True)
        reference = self._layer_for(s.reference, "Reference")
        if reference is not None:
            self.reference.setLayer(reference)
            self.reference_field.setField(s.reference_field)
            self.show_legend()
            self.edit_legend(s.legend)

    @staticmethod
    def _layer_for(path: str, name: str):
        """The project's vector layer reading ``path``, loaded if there is none."""
        if not path:
            return None
        for layer in QgsProject.instance().mapLayers().values():
            if _file_path(layer) == path:
                return layer
        if not os.path.exists(path):
            return None
        layer = QgsVectorLayer(path, name, "ogr")
        return QgsProject.instance().addMapLayer(layer) if layer.isValid() else None

    def save_to_project(self, *_args) -> None:
        QgsProject.instance().writeEntry(PROJECT_SCOPE, PROJECT_KEY, self.settings().to_json())

    def load_from_project(self, *_args) -> None:
        text, ok = QgsProject.instance().readEntry(PROJECT_SCOPE, PROJECT_KEY, "")
        if ok and text:
            self.apply_text(text, "the project")

    def apply_text(self, text: str, origin: str) -> None:
        """Show settings saved as JSON; settings that cannot be read are reported, not raised into QGIS."""
        try:
            self.apply(WorkbenchSettings.from_json(text))
        except (LandCoverError, TypeError, ValueError) as exc:
            self.step_label.setText(f"The workbench settings in {origin} could not be read: {exc}")

    def load_settings_file(self) -> None:
        from qgis.PyQt.QtWidgets import QFileDialog

        path, _ = QFileDialog.getOpenFileName(self, "Workbench settings", "", "Settings (settings.json *.json)")
        if path:
            with open(path, encoding="utf-8") as f:
                self.apply_text(f.read(), path)

    # --- area, scenes, legend --------------------------------------------------------------------

    def set_drawn_area(self, rect: QgsRectangle) -> None:
        self.drawn = QgsRectangle(rect)
        self.drawn_crs = self.canvas.mapSettings().destinationCrs()
        self.drawn_label.setText(f"{rect.width():.0f} × {rect.height():.0f} ({self.drawn_crs.authid()})")
        self.area_buttons.button(2).setChecked(True)
        self.canvas.unsetMapTool(self.extent_tool)

    def list_scenes(self) -> None:
        try:
            settings = self.settings()
            rect, crs = self.area_bounds()
        except LandCoverError as exc:
            self.scene_status.setText(str(exc))
            return
        bounds = (rect.xMinimum(), rect.yMinimum(), rect.xMaximum(), rect.yMaximum())
        self.scene_status.setText("Searching…")
        self.list_button.setEnabled(False)
        self.search_task = scene_search_task(lambda: list_scenes(settings, bounds, crs.authid() or crs.toWkt()), self.show_scenes)
        QgsApplication.taskManager().addTask(self.search_task)

    def show_scenes(self, error, rows) -> None:
        self.list_button.setEnabled(True)
        if error is not None:
            self.scene_status.setText(f"Scene search failed: {error}")
            return
        self.scenes = rows or []
        self.scene_table.setRowCount(len(self.scenes))
        for r, row in enumerate(self.scenes):
            item = QTableWidgetItem(row.date.isoformat())
            item.setFlags(Qt.ItemFlag.ItemIsUserCheckable | Qt.ItemFlag.ItemIsEnabled)
            item.setCheckState(Qt.CheckState.Checked)
            item.setToolTip(", ".join(row.ids))
            self.scene_table.setItem(r, 0, item)
            self.scene_table.setItem(r, 1, QTableWidgetItem("" if row.cloud != row.cloud else f"{row.cloud:.1f}"))  # NaN: not known
            self.scene_table.setItem(r, 2, QTableWidgetItem(", ".join(row.tiles)))
        self.scene_status.setText(f"{len(self.scenes)} acquisition dates.")

    def show_quicklook(self, row: int, *_args) -> None:
        """Fetch the quick-look of the selected date (QGIS's network manager: its proxy and SSL settings)."""
        self.quicklook.clear()
        url = self.scenes[row].quicklook if 0 <= row < len(self.scenes) else ""
        if not url:
            return
        self.quicklook.setText("Loading the quick-look…")
        self.quicklook_reply = QgsNetworkAccessManager.instance().get(QNetworkRequest(QUrl(url)))
        self.quicklook_reply.finished.connect(lambda reply=self.quicklook_reply: self.quicklook_loaded(reply))

    def quicklook_loaded(self, reply) -> None:
        if reply is not self.quicklook_reply:  # another date was selected meanwhile
            return
        pixmap = QPixmap()
        if reply.error() == QNetworkReply.NetworkError.NoError and pixmap.loadFromData(bytes(reply.readAll())):
            self.quicklook.setPixmap(pixmap.scaled(240, 240, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation))
        else:
            self.quicklook.setText(f"No quick-look: {reply.errorString()}")
        reply.deleteLater()
        self.quicklook_reply = None

    def leave_out(self, date_text: str) -> None:
        """Untick the scene of a date (what a click on its checkbox does)."""
        for r in range(self.scene_table.rowCount()):
            if self.scene_table.item(r, 0).text() == date_text:
                self.scene_table.item(r, 0).setCheckState(Qt.CheckState.Unchecked)

    def show_legend(self, *_args) -> None:
        layer, field = self.reference.currentLayer(), self.reference_field.currentField()
        self.legend.setRowCount(0)
        self.legend_classes = None
        if layer is None or not field:
            return
        try:
            classes = reference_legend(_file_path(layer), field)
        except LandCoverError as exc:
            self.legend.setRowCount(1)
            self.legend.setItem(0, 1, QTableWidgetItem(str(exc)))
            return
        self.legend_classes = classes
        self.legend.blockSignals(True)
        self.legend.setRowCount(len(classes))
        for r, c in enumerate(classes):
            class_id = QTableWidgetItem(str(c.id))
            class_id.setFlags(Qt.ItemFlag.ItemIsEnabled)
            self.legend.setItem(r, 0, class_id)
            self.legend.setItem(r, 1, QTableWidgetItem(c.name))
            self.legend.setItem(r, 2, QTableWidgetItem(c.color))
        self.legend.blockSignals(False)
        for r in range(len(classes)):
            self.paint_legend_row(self.legend.item(r, 2))

    def paint_legend_row(self, item: QTableWidgetItem) -> None:
        """Show a class in its colour (the colour cell's text, when it is a valid colour)."""
        if item is None or item.column() == 0:
            return
        r = item.row()
        colour = QColor(self.legend.item(r, 2).text().strip()) if self.legend.item(r, 2) else QColor()
        name = self.legend.item(r, 1)
        if colour.isValid() and name is not None:
            self.legend.blockSignals(True)
            name.setBackground(colour)
            name.setForeground(QColor("#ffffff" if colour.lightness() < 128 else "#000000"))
            self.legend.blockSignals(False)

    def legend_edits(self) -> list[list]:
        """[id, name, colour] of the classes the user renamed or recoloured."""
        edits = []
        for r, c in enumerate(self.legend_classes or ()):
            name, colour = self.legend.item(r, 1).text().strip(), self.legend.item(r, 2).text().strip().lower()
            if (name, colour) != (c.name, c.color):
                edits.append([c.id, name or c.name, colour or c.color])
        return edits

    def edit_legend(self, edits: list[list]) -> None:
        """Put saved edits back into the legend shown for the reference."""
        by_id = {int(e[0]): e for e in edits}
        for r, c in enumerate(self.legend_classes or ()):
            if c.id in by_id:
                self.legend.item(r, 1).setText(str(by_id[c.id][1]))
                self.legend.item(r, 2).setText(str(by_id[c.id][2]))

    # --- running ---------------------------------------------------------------------------------

    def start_run(self, preview: bool) -> None:
        try:
            settings = self.settings(write_area_file=True)
            settings.check()
        except LandCoverError as exc:
            self.step_label.setText(f"{exc.argument}: {exc}" if exc.argument else str(exc))
            return
        self.save_to_project()
        self.loaded = {}
        self.report = None
        self.log.clear()
        self.task = WorkbenchTask(settings, preview)
        self.task.stepStarted.connect(self.on_step)
        self.task.stepProgress.connect(lambda p: self.progress.setValue(int(p)))
        self.task.resultReady.connect(self.load_result)
        self.task.log.connect(self.log.appendPlainText)
        self.task.command.connect(add_to_history)
        self.task.taskCompleted.connect(self.on_finished)
        self.task.taskTerminated.connect(self.on_finished)
        for button in (self.run_button, self.preview_button):
            button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        QgsApplication.taskManager().addTask(self.task)

    def on_step(self, number: int, label: str) -> None:
        self.step_label.setText(f"Step {number}: {label}")
        self.progress.setValue(0)
        self.log.appendPlainText(f"— {label}")

    def cancel(self) -> None:
        if self.task is not None:
            self.task.cancel()

    def load_result(self, path: str, name: str) -> None:
        """Load a finished output into the run's group, styled; only maps are switched on."""
        layer = QgsRasterLayer(path, name)
        if not layer.isValid():
            return
        apply_style(layer, path)
        kind = raster_info(path)["kind"]
        project = QgsProject.instance()
        root = project.layerTreeRoot()
        group = root.findGroup(GROUP_NAME) or root.insertGroup(0, GROUP_NAME)
        project.addMapLayer(layer, False)
        node = group.insertLayer(0, layer)
        node.setItemVisibilityChecked(kind == "classes")
        self.loaded.setdefault(kind, []).append(layer)
        if kind == "classes" and len(self.loaded["classes"]) == 1:
            to_canvas = QgsCoordinateTransform(layer.crs(), self.canvas.mapSettings().destinationCrs(), project)
            self.canvas.setExtent(to_canvas.transformBoundingBox(layer.extent()))
        self.canvas.refresh()

    def on_finished(self, *_args) -> None:
        task, self.task = self.task, None
        for button in (self.run_button, self.preview_button):
            button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        if task is None:
            return
        if task.error or task.result is None:
            self.step_label.setText(task.error or "Cancelled.")
            return
        self.progress.setValue(100)
        self.step_label.setText(f"Finished: {len(task.result['maps'])} map(s) in {task.settings.output_folder}")
        if self.profile_dock is not None:
            first = {kind: layers[0] for kind, layers in self.loaded.items()}  # the first patch's
            kinds = ("timestack", "cloudmask", "interpolated", "classes", "probabilities")
            self.profile_dock.set_layers(*(first.get(kind) for kind in kinds))
        self.report = task.result.get("report")
        if self.report:
            self.open_report(self.report)
