"""The "Measure focus" dock widget: measure, see, save and refocus from napari.

Work runs in napari's worker threads (one job at a time); the viewer stays responsive and a
stack can be cancelled between planes. Errors become napari notifications with the CLI's
messages; nothing is raised into the event loop.
"""

from __future__ import annotations

import time
from pathlib import Path

from magicgui import widgets

from ..errors import FocusnetError
from . import _measure

#: The axis choice that measures the plane the viewer shows.
SHOWN_PLANE = "the plane shown (2-D)"
#: Names of the layers the widget adds (after the measured layer's name).
PATCHES_SUFFIX = " focus patches"
BEST_PLANE_SUFFIX = " best plane per patch"
REFOCUSED_SUFFIX = " refocused"
#: The progress bar is redrawn at most this often (seconds).
PROGRESS_EVERY_S = 0.25


def _notify_error(message: str) -> None:
    from napari.utils.notifications import show_error

    show_error(message)


def _notify_info(message: str) -> None:
    from napari.utils.notifications import show_info

    show_info(message)


def error_message(error: BaseException) -> str:
    """The message a user sees: focusnet's own for its errors, otherwise the type and text."""
    if isinstance(error, FocusnetError):
        return str(error)
    return f"focusnet could not finish: {type(error).__name__}: {error}"


class MeasureFocusWidget(widgets.Container):
    """Measure the focus of the selected image layer, as a 2-D image or plane by plane along an axis.

    Parameters
    ----------
    napari_viewer : napari.viewer.Viewer
    """

    def __init__(self, napari_viewer):
        super().__init__(labels=True)
        self.viewer = napari_viewer
        self.worker = None
        self.image_outcome = None
        self.stack_result = None
        self.stack_request = None
        self.last_error = ""
        self._last_progress = 0.0

        self.layer = widgets.ComboBox(label="layer", choices=self._layer_names)
        self.axis = widgets.ComboBox(label="planes along", choices=self._axis_choices)
        self.model = widgets.FileEdit(label="model", mode="r", value="",
                                      tooltip="A model folder, bundle (.zip) or .onnx file; empty: the shipped model")
        self.pixel_size = widgets.FloatSpinBox(label="pixel size (µm)", value=0.0, min=0.0, max=1000.0, step=0.01,
                                               tooltip="0: the layer's scale, else the model's")
        self.z_step = widgets.FloatSpinBox(label="z step (µm)", value=0.0, min=0.0, max=1000.0, step=0.1,
                                           tooltip="0: the layer's scale along the plane axis, else unknown")
        self.numerical_aperture = widgets.FloatSpinBox(label="NA", value=0.0, min=0.0, max=1.7, step=0.05,
                                                       tooltip="the objective's numerical aperture; 0: the model's")
        self.refractive_index = widgets.FloatSpinBox(label="immersion index", value=0.0, min=0.0, max=2.0,
                                                     step=0.01, tooltip="0: the model's")
        self.wavelength = widgets.FloatSpinBox(label="wavelength (µm)", value=0.0, min=0.0, max=2.0, step=0.01,
                                               tooltip="emission wavelength; 0: the model's")
        self.scale = widgets.FloatSpinBox(label="count of 1.0", value=0.0, min=0.0, max=1e9, step=1.0,
                                          tooltip="float layers only: the count 1.0 stands for (65535 for 16-bit)")
        self.best_plane_map = widgets.CheckBox(label="best plane per patch (stacks)", value=False)
        self.measure_button = widgets.PushButton(text="Measure")
        self.cancel_button = widgets.PushButton(text="Cancel", enabled=False)
        self.best_button = widgets.PushButton(text="Go to best plane", enabled=False)
        self.refocus_button = widgets.PushButton(text="Refocus the plane shown")
        self.save_button = widgets.PushButton(text="Save CSV...", enabled=False)
        self.progress = widgets.ProgressBar(label="progress", value=0, min=0, max=1)
        self.table = widgets.Table(label="result", value={"data": [], "columns": []})
        self.extend([self.layer, self.axis, self.model, self.pixel_size, self.z_step, self.numerical_aperture,
                     self.refractive_index, self.wavelength, self.scale, self.best_plane_map, self.measure_button,
                     self.cancel_button, self.best_button, self.refocus_button, self.save_button, self.progress,
                     self.table])
        self.figure, self.canvas = self._curve_canvas()
        self.native.layout().addWidget(self.canvas)

        self.layer.changed.connect(lambda _value: self.axis.reset_choices())
        self.measure_button.changed.connect(self.measure)
        self.cancel_button.changed.connect(self.cancel)
        self.best_button.changed.connect(self.go_to_best_plane)
        self.refocus_button.changed.connect(self.refocus)
        self.save_button.changed.connect(self._save_dialog)
        for event in (self.viewer.layers.events.inserted, self.viewer.layers.events.removed,
                      self.viewer.layers.events.reordered):
            event.connect(self._layers_changed)
        self.viewer.layers.selection.events.active.connect(self._selection_changed)
        self._selection_changed()

    # --- choices -----------------------------------------------------------------------------

    def _layer_names(self, _widget=None) -> list:
        return [layer.name for layer in self.viewer.layers]

    def _axis_choices(self, _widget=None) -> list:
        layer = self.selected_layer()
        choices = [SHOWN_PLANE]
        if layer is not None and getattr(layer, "rgb", False) is False and layer.ndim > 2:
            names = self.viewer.dims.axis_labels[-layer.ndim:]
            choices += [f"axis {axis} ({names[axis]}, {layer.data.shape[axis]} planes)"
                        for axis in range(layer.ndim - 2)]
        return choices

    def _layers_changed(self, _event=None) -> None:
        self.layer.reset_choices()
        self.axis.reset_choices()

    def _selection_changed(self, _event=None) -> None:
        active = self.viewer.layers.selection.active
        self.layer.reset_choices()
        if active is not None and active.name in self.layer.choices and not active.name.endswith(
                (PATCHES_SUFFIX, BEST_PLANE_SUFFIX)):
            self.layer.value = active.name
        self.axis.reset_choices()
        if len(self.axis.choices) > 1:  # a stack: its first plane axis by default
            self.axis.value = self.axis.choices[1]

    def selected_layer(self):
        """The layer chosen in the widget (None when there is none)."""
        name = self.layer.value
        return self.viewer.layers[name] if name in self.viewer.layers else None

    def selected_axis(self):
        """The plane axis chosen, or None for the plane shown."""
        value = self.axis.value
        return None if value in (None, SHOWN_PLANE) else int(value.split()[1])

    # --- jobs --------------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """Whether a job is running."""
        return self.worker is not None

    def request(self, axis=...):
        """The request for the chosen layer and settings (:func:`focusnet.napari._measure.make_request`)."""
        model = str(self.model.value) if str(self.model.value) not in ("", ".") else None
        objective = {"numerical_aperture": self.numerical_aperture.value,
                     "refractive_index": self.refractive_index.value, "wavelength_um": self.wavelength.value}
        return _measure.make_request(self.selected_layer(), self.viewer.dims.current_step,
                                     self.selected_axis() if axis is ... else axis, self.pixel_size.value,
                                     self.z_step.value, model, objective, self.scale.value)

    def measure(self, _value=None) -> None:
        """Measure the chosen layer in a worker thread (a stack plane by plane, cancellable)."""
        if self.busy:
            return
        try:
            request = self.request()
        except FocusnetError as error:
            return self._failed(error)
        if request.axis is None:
            self._start(_measure.measure_image, request, self._show_image)
        else:
            self.progress.max, self.progress.value = request.planes, 0
            self.stack_request = request
            self._start(_measure.measure_stack, request, self._show_stack)

    def refocus(self, _value=None) -> None:
        """Refocus the plane shown into a new layer, with its level before and after."""
        if self.busy:
            return
        try:
            request = self.request(axis=None)
        except FocusnetError as error:
            return self._failed(error)
        self._start(_measure.refocus_plane, request, lambda result: self._show_refocused(request, result))

    def cancel(self, _value=None) -> None:
        """Stop a running stack after the plane being measured."""
        if self.worker is not None:
            self.worker.quit()

    def _start(self, job, request, on_result) -> None:
        from napari.qt.threading import create_worker

        self.last_error = ""
        # Errors are ours to show (as notifications); napari would otherwise raise them again in the event loop.
        worker = create_worker(job, request, _start_thread=False, _ignore_errors=True)
        worker.returned.connect(on_result)
        worker.errored.connect(self._failed)
        if hasattr(worker, "yielded"):
            worker.yielded.connect(self._advance)
            worker.aborted.connect(lambda: _notify_info(f"{request.name}: measuring cancelled"))
        worker.finished.connect(self._finished)
        self.worker = worker
        self._set_running(True)
        worker.start()

    def _set_running(self, running: bool) -> None:
        self.measure_button.enabled = self.refocus_button.enabled = not running
        self.cancel_button.enabled = running

    def _advance(self, progress) -> None:
        # Repainting the bar for every plane cost more than measuring the planes (a 40-plane
        # 696 x 520 stack took 0.6 s instead of 0.2 s): it is redrawn at most every PROGRESS_EVERY_S.
        done, total = progress
        now = time.monotonic()
        if done == total or now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self.progress.max, self.progress.value = total, done

    def _finished(self) -> None:
        self.worker = None
        self._set_running(False)

    def _failed(self, error) -> None:
        self.last_error = error_message(error)
        _notify_error(self.last_error)

    # --- results -----------------------------------------------------------------------------

    def _result_layer(self, name: str, labels, step: int, source, colours=None, features=None):
        """Add or replace a labels layer drawn over ``source`` (same scale and position, ``step`` pixels a cell)."""
        import numpy as np
        from napari.utils.colormaps import DirectLabelColormap

        if name in self.viewer.layers:
            self.viewer.layers.remove(name)
        scale = np.asarray(source.scale[-2:], dtype=float) * step
        translate = np.asarray(source.translate[-2:], dtype=float) + (step - 1) * np.asarray(source.scale[-2:]) / 2
        layer = self.viewer.add_labels(labels, name=name, scale=scale, translate=translate, opacity=0.45,
                                       features=features)
        if colours is not None:
            layer.colormap = DirectLabelColormap(color_dict=colours)
        return layer

    def _show_image(self, outcome) -> None:
        self.image_outcome, self.stack_result = outcome, None
        layer = self.viewer.layers[outcome.request.name]
        prediction = outcome.prediction
        labels, step = _measure.patch_labels(prediction, outcome.request.data.shape[-2:])
        self._result_layer(outcome.request.name + PATCHES_SUFFIX, labels, step, layer,
                           _measure.patch_colours(prediction), _measure.patch_features(prediction))
        rows = _measure.summary_rows(prediction)
        self.table.value = {"data": [[value] for _, value in rows], "index": [name for name, _ in rows],
                            "columns": ["whole image"]}
        self.best_button.enabled, self.save_button.enabled = False, True
        for note in prediction.notes:
            _notify_info(note)

    def _show_stack(self, stack) -> None:
        from qtpy.QtCore import QTimer

        self.stack_result, self.image_outcome = stack, None
        request = self.stack_request
        rows = _measure.plane_rows(stack)
        self.table.value = {"data": [list(row) for row in rows], "index": [row[0] for row in rows],
                            "columns": ["plane", "z (µm)", "level", "expected", "spread", "certainty", "best"]}
        # The curve is built and painted when the event loop is next idle: the table and buttons come first.
        QTimer.singleShot(0, lambda: self._draw_curve(stack, f"{request.name}: best plane {stack.best_plane}"))
        self.best_button.enabled = stack.best_plane is not None
        self.save_button.enabled = True
        if self.best_plane_map.value and stack.measured:
            labels, step = _measure.best_plane_map(stack, request.data.shape[-2:])
            self._result_layer(request.name + BEST_PLANE_SUFFIX, labels, step, self.viewer.layers[request.name],
                               features={"index": list(range(request.planes + 1)),
                                         "best_plane": ["none"] + list(range(request.planes))})
        if stack.best_plane is None:
            _notify_error(f"{request.name}: no plane could be measured (" + "; ".join(
                {str(plane.error) for plane in stack.planes[:3]}) + ")")

    def _show_refocused(self, request, result) -> None:
        before = result.before.defocus_level if result.before is not None else "unknown"
        if not result.refocused:
            return _notify_info(f"{request.name}: not refocused: {result.reason} (level {before})")
        source = self.viewer.layers[request.name]
        self.viewer.add_image(result.image, name=request.name + REFOCUSED_SUFFIX, scale=source.scale[-2:],
                              translate=source.translate[-2:], colormap=source.colormap.name)
        after = result.after.defocus_level if result.after is not None else "unknown"
        _notify_info(f"{request.name}: refocused from level {before} to level {after}"
                     + (f" ({result.reason})" if result.reason else ""))

    def _draw_curve(self, stack, title: str) -> None:
        from ..stacks.plot import draw_focus_curve

        draw_focus_curve(self.figure, stack, title=title)
        self.canvas.draw()

    def go_to_best_plane(self, _value=None) -> None:
        """Move the viewer's slider on the plane axis to the best plane."""
        if self.stack_result is None or self.stack_result.best_plane is None:
            return
        layer = self.viewer.layers[self.stack_request.name]
        world_axis = self.viewer.dims.ndim - layer.ndim + self.stack_request.axis
        self.viewer.dims.set_current_step(world_axis, self.stack_result.best_plane)

    # --- saving ------------------------------------------------------------------------------

    def save_csv(self, path) -> list:
        """Write the last result as the CLI writes it; returns the files written.

        A 2-D result: ``path`` is ``focusnet predict --csv`` and ``<stem>_patches.csv`` its
        ``--patches-csv``. A stack: ``path`` is ``focusnet stack --csv`` (one row per plane)
        and ``<stem>_stacks.csv`` its summary.

        Raises
        ------
        InvalidParameterError
            Before anything is written, when either file is the file an open layer was read from.
        """
        from ..files import refuse_inputs_as_outputs

        path = Path(path)
        second = path.with_name(path.stem + ("_patches" if self.image_outcome is not None else "_stacks") + ".csv")
        refuse_inputs_as_outputs([layer.source.path for layer in self.viewer.layers if layer.source.path],
                                 [path, second])
        if self.image_outcome is not None:
            _measure.write_image_csvs(self.image_outcome, path, second)
        elif self.stack_result is not None:
            _measure.write_stack_csvs(self.stack_result, path, second)
        else:
            return []
        return [path, second]

    def _save_dialog(self, _value=None) -> None:
        from qtpy.QtWidgets import QFileDialog

        path, _ = QFileDialog.getSaveFileName(self.native, "Save focusnet CSV", "focus.csv", "CSV (*.csv)")
        if path:
            try:
                written = self.save_csv(path)
            except (OSError, FocusnetError) as error:
                return self._failed(error)
            _notify_info("written: " + ", ".join(map(str, written)))

    # --- the focus curve -----------------------------------------------------------------------

    @staticmethod
    def _curve_canvas():
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(4, 4), tight_layout=True)
        canvas = FigureCanvasQTAgg(figure)
        canvas.setMinimumHeight(340)
        return figure, canvas
