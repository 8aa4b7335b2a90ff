"""Pixel time-series profiles: a map tool and a dock that plots what a clicked pixel went through.

Click a pixel with the tool: the dock reads (lc_plugin.timeseries.profiles) its series from the chosen time
stack — raw observations as dots, the ones the cloud-mask stack marks as cloudy as crosses — the
interpolated curve from the interpolated stack, for a band or NDVI/NDWI/NDBI, and the class and
class probabilities from a map. Every click adds a pixel (overlaid in its own colour) until Clear.
"""

from __future__ import annotations

from dataclasses import dataclass

from qgis.core import (
    QgsCoordinateReferenceSystem,
    QgsCoordinateTransform,
    QgsPointXY,
    QgsProject,
    QgsRasterLayer,
)
from qgis.gui import QgsDockWidget, QgsMapCanvas, QgsMapLayerComboBox, QgsMapToolEmitPoint, QgsVertexMarker
from qgis.PyQt.QtCore import Qt
from qgis.PyQt.QtGui import QColor
from qgis.PyQt.QtWidgets import QComboBox, QFormLayout, QHBoxLayout, QLabel, QPushButton, QVBoxLayout, QWidget

from ..lc_plugin.core.errors import LandCoverError
from ..lc_plugin.io.rasters import read_stack_info
from ..lc_plugin.timeseries.profiles import PixelClass, PixelSeries, read_pixel_class, read_pixel_series, series_names
from .compat import RASTER_LAYERS
from .plot import PlotWidget

COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2"]


@dataclass
class PixelProfile:
    """What one click read: the point (map CRS), the series of each stack, the class."""

    point: QgsPointXY
    raw: PixelSeries | None
    interpolated: PixelSeries | None
    pixel_class: PixelClass | None


def layer_path(layer: QgsRasterLayer | None) -> str | None:
    return layer.source().split("|")[0] if layer is not None else None


class PixelTool(QgsMapToolEmitPoint):
    """Emits ``canvasClicked(point, button)`` in the canvas CRS; the dock listens."""

    def __init__(self, canvas: QgsMapCanvas) -> None:
        super().__init__(canvas)
        self.setCursor(Qt.CursorShape.CrossCursor)


class ProfileDock(QgsDockWidget):
    """The "Pixel profile" dock; ``tool`` is its map tool (activate it to pick pixels)."""

    def __init__(self, canvas: QgsMapCanvas, parent: QWidget | None = None) -> None:
        super().__init__("Pixel profile", parent)
        self.setObjectName("LandCoverPixelProfile")
        self.canvas = canvas
        self.profiles: list[PixelProfile] = []
        self.markers: list[QgsVertexMarker] = []  # where each plotted pixel is, in its colour
        self.tool = PixelTool(canvas)
        self.tool.canvasClicked.connect(self.on_click)
        body = QWidget(self)
        form = QFormLayout()
        self.stack = self._combo(form, "Time stack")
        self.mask = self._combo(form, "Cloud mask stack")
        self.interpolated = self._combo(form, "Interpolated stack")
        self.class_map = self._combo(form, "Land-cover map")
        self.probabilities = self._combo(form, "Class probabilities")
        self.series = QComboBox(body)
        form.addRow("Plot", self.series)
        self.stack.layerChanged.connect(self.update_series_names)
        self.interpolated.layerChanged.connect(self.update_series_names)
        self.series.currentIndexChanged.connect(self.redraw)
        buttons = QHBoxLayout()
        self.pick = QPushButton("Pick pixels on the map", body)
        self.pick.setCheckable(True)
        self.pick.toggled.connect(self.activate)
        self.clear_button = QPushButton("Clear", body)
        self.clear_button.clicked.connect(self.clear)
        buttons.addWidget(self.pick)
        buttons.addWidget(self.clear_button)
        self.plot = PlotWidget(body)
        self.info = QLabel(body)
        self.info.setWordWrap(True)
        self.info.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        layout = QVBoxLayout(body)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.info)
        self.setWidget(body)
        self.update_series_names()

    def _combo(self, form: QFormLayout, label: str) -> QgsMapLayerComboBox:
        """A raster layer choice, empty by default: a click reads only the layers chosen (a map alone gives its class)."""
        combo = QgsMapLayerComboBox(self)
        combo.setFilters(RASTER_LAYERS)
        combo.setAllowEmptyLayer(True)
        combo.setLayer(None)
        form.addRow(label, combo)
        return combo

    def set_layers(self, stack=None, mask=None, interpolated=None, class_map=None, probabilities=None) -> None:
        """Choose the layers to read (the workbench does this when its results are loaded)."""
        chosen = zip((self.stack, self.mask, self.interpolated, self.class_map, self.probabilities), (stack, mask, interpolated, class_map, probabilities))
        for combo, layer in chosen:
            if layer is not None:
                combo.setLayer(layer)

    def update_series_names(self, *_args) -> None:
        current = self.series.currentText()
        path = layer_path(self.stack.currentLayer() or self.interpolated.currentLayer())
        try:
            names = series_names(read_stack_info(path)[1]) if path else []
        except LandCoverError:
            names = []
        self.series.blockSignals(True)
        self.series.clear()
        self.series.addItems(names)
        if current in names:
            self.series.setCurrentIndex(names.index(current))
        self.series.blockSignals(False)
        self.redraw()

    def activate(self, on: bool) -> None:
        if on:
            self.canvas.setMapTool(self.tool)
        elif self.canvas.mapTool() is self.tool:
            self.canvas.unsetMapTool(self.tool)

    def on_click(self, point: QgsPointXY, _button=None) -> None:
        self.add_point(point, self.canvas.mapSettings().destinationCrs())

    def add_point(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem) -> PixelProfile | None:
        """Read the pixel under ``point`` (in ``crs``) from every chosen layer and plot it."""
        try:
            profile = PixelProfile(
                point,
                self._series(self.stack.currentLayer(), point, crs, self.mask.currentLayer()),
                self._series(self.interpolated.currentLayer(), point, crs, None),
                self._class(point, crs),
            )
        except LandCoverError as exc:
            self.info.setText(str(exc))
            return None
        self.profiles.append(profile)
        self._mark(point, crs, COLOURS[(len(self.profiles) - 1) % len(COLOURS)])
        self.redraw()
        return profile

    def _mark(self, point: QgsPointXY, crs: QgsCoordinateReferenceSystem, colour: str) -> None:
        canvas_crs = self.canvas.mapSettings().destinationCrs()
        if crs.isValid() and crs != canvas_crs:
            point = QgsCoordinateTransform(crs, canvas_crs, QgsProject.instance()).transform(point)
        marker = QgsVertexMarker(self.canvas)
        marker.setCenter(point)
        marker.setColor(QColor(colour))
        marker.setIconType(QgsVertexMarker.IconType.ICON_CROSS)
        marker.setIconSize(14)
        marker.setPenWidth(3)
        self.markers.append(marker)

    def remove_markers(self) -> None:
        """Take the pixel markers off the map."""
        for marker in self.markers:
            self.canvas.scene().removeItem(marker)
        self.markers.clear()

    def release(self) -> None:
        """Give the map back before the plugin is unloaded: no markers, not the active map tool."""
        self.activate(False)
        self.remove_markers()

    def _xy(self, layer: QgsRasterLayer, point: QgsPointXY, crs: QgsCoordinateReferenceSystem) -> tuple[float, float]:
        if crs.isValid() and layer.crs() != crs:
            point = QgsCoordinateTransform(crs, layer.crs(), QgsProject.instance()).transform(point)
        return point.x(), point.y()

    def _series(self, layer, point, crs, mask_layer) -> PixelSeries | None:
        if layer is None:
            return None
        x, y = self._xy(layer, point, crs)
        mask = layer_path(mask_layer) if mask_layer is not None and mask_layer.crs() == layer.crs() else None
        return read_pixel_series(layer_path(layer), x, y, mask_path=mask)

    def _class(self, point, crs) -> PixelClass | None:
        layer = self.class_map.currentLayer()
        if layer is None:
            return None
        x, y = self._xy(layer, point, crs)
        return read_pixel_class(layer_path(layer), x, y, layer_path(self.probabilities.currentLayer()))

    def clear(self) -> None:
        self.profiles.clear()
        self.remove_markers()
        self.redraw()

    def redraw(self, *_args) -> None:
        from matplotlib.dates import DateFormatter

        name = self.series.currentText()
        figure = self.plot.figure
        figure.clear()
        ax = figure.add_subplot(111)
        lines = []
        for i, profile in enumerate(self.profiles):
            colour = COLOURS[i % len(COLOURS)]
            lines.extend(self._plot_profile(ax, profile, name, colour, i + 1))
        ax.set_ylabel(name or "")
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # nothing to plot when only a map is chosen
            ax.legend(fontsize="x-small", loc="best", framealpha=0.6)
            ax.xaxis.set_major_formatter(DateFormatter("%b\n%Y" if len(self._years()) > 1 else "%b"))
        ax.tick_params(labelsize="small")
        self.plot.draw()
        self.info.setText("<br>".join(lines))

    def _years(self) -> set[int]:
        return {d.year for p in self.profiles for s in (p.raw, p.interpolated) if s is not None for d in s.dates}

    def _plot_profile(self, ax, profile: PixelProfile, name: str, colour: str, n: int) -> list[str]:
        text = []
        for series, interpolated in ((profile.raw, False), (profile.interpolated, True)):
            if series is None or not name:
                continue
            try:
                values = series.series(name)
            except LandCoverError:
                continue
            if interpolated:
                ax.plot(series.dates, values, "-", color=colour, label=f"pixel {n} interpolated")
                continue
            cloudy = series.cloudy if series.cloudy is not None else [False] * len(series.dates)
            clear = [(d, v) for d, v, c in zip(series.dates, values, cloudy) if not c]
            cloud = [(d, v) for d, v, c in zip(series.dates, values, cloudy) if c]
            if clear:
                ax.plot(*zip(*clear), "o", color=colour, markersize=4, label=f"pixel {n} ({series.row}, {series.col})")
            if cloud:
                ax.plot(*zip(*cloud), "x", color=colour, markersize=6, label=f"pixel {n} cloudy")
        if profile.pixel_class is not None:
            c = profile.pixel_class
            probabilities = ", ".join(f"{k} {v:.2f}" for k, v in sorted(c.probabilities.items(), key=lambda kv: -kv[1]))
            line = f"<span style='color:{colour}'>■</span> pixel {n}: <b>{c.name}</b> (class {c.class_id})"
            text.append(line + (f" — {probabilities}" if probabilities else ""))
        return text
