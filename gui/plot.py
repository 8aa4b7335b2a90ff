"""A matplotlib plot inside a Qt widget: the Qt canvas when matplotlib has one for the running Qt, else a PNG in a label.

Why the fallback: matplotlib's ``backend_qtagg`` binds to whichever of PyQt5/PyQt6 is already
imported (qgis.PyQt imports the one QGIS runs on); an old matplotlib without Qt6 support must not
take the panel down, so the same figure is then rendered by Agg and shown as an image.
"""

from __future__ import annotations

import io

from qgis.PyQt.QtGui import QPixmap
from qgis.PyQt.QtWidgets import QLabel, QSizePolicy, QVBoxLayout, QWidget


class PlotWidget(QWidget):
    """Holds a matplotlib ``figure``; call ``draw()`` after changing it."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from matplotlib.figure import Figure

        self.figure = Figure(figsize=(5, 3), dpi=100, tight_layout=True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        try:
            from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg

            self.canvas = FigureCanvasQTAgg(self.figure)
            self.label = None
            layout.addWidget(self.canvas)
        except (ImportError, RuntimeError, TypeError):  # no Qt canvas for this Qt binding
            self.canvas = None
            self.label = QLabel(self)
            self.label.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
            layout.addWidget(self.label)
        self.setMinimumHeight(220)

    def draw(self) -> None:
        if self.canvas is not None:
            self.canvas.draw_idle()
            return
        from matplotlib.backends.backend_agg import FigureCanvasAgg

        FigureCanvasAgg(self.figure)
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format="png")
        pixmap = QPixmap()
        pixmap.loadFromData(buffer.getvalue(), "PNG")
        self.label.setPixmap(pixmap)
