"""The "Measure focus" widget in a real napari viewer, driven as a user drives it.

Numbers are checked against focusnet's one inference path and against the command line's CSVs
run in this same environment (onnxruntime, the shipped ``default.onnx``).
"""

import csv
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

napari = pytest.importorskip("napari", reason="napari is not installed here; the napari tier runs in .venv-napari "
                                              "(make test-napari)")
pytest.importorskip("pytestqt", reason="pytest-qt is not installed here (make test-napari builds .venv-napari)")

from focusnet.contract import IMAGE_COLUMNS, STACK_PLANE_COLUMNS  # noqa: E402
from focusnet.inference import predict_image  # noqa: E402
from focusnet.loader import load_model  # noqa: E402
from focusnet.napari import _sample_data  # noqa: E402
from focusnet.napari._widget import BEST_PLANE_SUFFIX, PATCHES_SUFFIX, REFOCUSED_SUFFIX, MeasureFocusWidget  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
#: Where a run saves the docs' screenshot (make napari-screenshots); otherwise the test's own folder.
SCREENSHOTS = os.environ.get("FOCUSNET_SCREENSHOT_DIR")
WAIT_MS = 120_000


def add_sample(viewer, function):
    data, keywords, _ = function()[0]
    return viewer.add_image(data, **keywords)


@pytest.fixture
def widget(make_napari_viewer):
    viewer = make_napari_viewer()
    widget = MeasureFocusWidget(viewer)
    viewer.window.add_dock_widget(widget, name="Measure focus")
    return widget


def click(qtbot, widget, button):
    button.native.click()
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def run_focusnet(*arguments):
    result = subprocess.run([sys.executable, "-m", "focusnet", *map(str, arguments)], capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, result.stderr
    return result


def assert_same_numbers(ours, theirs, columns, skip=()):
    for column in columns:
        if column in skip:
            continue
        try:
            expected = float(theirs[column])
        except ValueError:
            assert ours[column] == theirs[column], column
            continue
        np.testing.assert_allclose(float(ours[column]), expected, rtol=1e-6, atol=1e-9, err_msg=column)


def test_the_plugin_menu_offers_the_widget_and_the_sample_data(make_napari_viewer):
    import npe2

    viewer = make_napari_viewer()
    manifest = npe2.PluginManager.instance().get_manifest("focusnet")
    assert [widget.display_name for widget in manifest.contributions.widgets] == ["Measure focus"]
    assert {sample.key for sample in manifest.contributions.sample_data} == {"in_focus", "out_of_focus",
                                                                          "through_focus_stack"}
    _, widget = viewer.window.add_plugin_dock_widget("focusnet", "Measure focus")
    assert isinstance(widget, MeasureFocusWidget)
    viewer.open_sample("focusnet", "in_focus")
    assert viewer.layers[-1].data.shape == (520, 696)


def test_a_2d_layer_gets_its_patch_levels_and_the_clis_numbers(widget, qtbot, tmp_path):
    viewer = widget.viewer
    layer = add_sample(viewer, _sample_data.in_focus_image)
    click(qtbot, widget, widget.measure_button)
    assert widget.last_error == ""
    expected = predict_image(layer.data, load_model(), pixel_size_um=0.65)
    prediction = widget.image_outcome.prediction
    np.testing.assert_array_equal(prediction.probabilities, expected.probabilities)
    patches = viewer.layers[layer.name + PATCHES_SUFFIX]
    # One label per patch, each patch's pixels carrying its label; the features give each label's level.
    assert patches.data.max() == expected.num_patches
    y, x = int(expected.y[1]), int(expected.x[2])
    label = patches.data[y + 5, x + 5]
    assert label == 1 * len(expected.x) + 2 + 1
    level = patches.features.set_index("index").loc[label, "level"]
    assert level == str(expected.patch_levels[1, 2]) if expected.judged_patches[1, 2] else level in (
        "no content", "too noisy")
    # Hovering shows the patch's level, certainty and top probabilities in the status bar.
    status = patches.get_status(patches.data_to_world((y + 5, x + 5)), world=True)
    text = str(status)
    assert "level" in text and "certainty" in text and "top_levels" in text
    # The table and the saved CSV are the command line's numbers.
    table = dict(zip(widget.table.value["index"], (row[0] for row in widget.table.value["data"])))
    assert table["defocus level"] == str(expected.defocus_level)
    assert table["aggregate certainty"] == f"{expected.aggregate_certainty:.3f}"
    written = widget.save_csv(tmp_path / "focus.csv")
    assert [path.name for path in written] == ["focus.csv", "focus_patches.csv"]
    run_focusnet("predict", _sample_data.DATA / "BBBC006_z_aligned__a07__s1__w1_10.tif", "--csv",
                 tmp_path / "cli.csv", "--pixel-size", "0.65")
    (ours,), (theirs,) = read_rows(tmp_path / "focus.csv"), read_rows(tmp_path / "cli.csv")
    assert_same_numbers(ours, theirs, IMAGE_COLUMNS, skip=("image", "pixel_size_source"))
    assert ours["pixel_size_source"] == "file"  # the layer's scale states it


def test_a_stack_gives_the_clis_planes_and_best_plane_and_the_slider_goes_there(widget, qtbot, tmp_path):
    import tifffile

    viewer = widget.viewer
    layer = add_sample(viewer, _sample_data.through_focus_stack)
    widget.layer.value = layer.name
    assert widget.selected_axis() == 0
    widget.best_plane_map.value = True
    click(qtbot, widget, widget.measure_button)
    assert widget.last_error == ""
    stack = widget.stack_result
    assert stack.best_plane == _sample_data.STACK_FOCUS
    assert len(widget.table.value["data"]) == _sample_data.STACK_PLANES
    assert viewer.layers[layer.name + BEST_PLANE_SUFFIX].data.max() >= 1
    # The curve is drawn in the widget (when the event loop is next idle).
    qtbot.waitUntil(lambda: len(widget.figure.axes) >= 2 and len(widget.figure.axes[0].collections) > 0,
                    timeout=WAIT_MS)
    click(qtbot, widget, widget.best_button)
    assert viewer.dims.current_step[0] == stack.best_plane
    # The same planes as `focusnet stack` on the same data written as an ImageJ stack.
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, layer.data, imagej=True, resolution=(1 / 0.65, 1 / 0.65),
                     metadata={"spacing": float(layer.scale[0]), "unit": "um", "axes": "ZYX"})
    run_focusnet("stack", path, "--csv", tmp_path / "cli_planes.csv")
    widget.save_csv(tmp_path / "planes.csv")
    ours, theirs = read_rows(tmp_path / "planes.csv"), read_rows(tmp_path / "cli_planes.csv")
    assert len(ours) == len(theirs) == _sample_data.STACK_PLANES
    for mine, cli in zip(ours, theirs):
        assert_same_numbers(mine, cli, STACK_PLANE_COLUMNS, skip=("stack", "channel"))
    assert read_rows(tmp_path / "planes_stacks.csv")[0]["best_plane"] == str(_sample_data.STACK_FOCUS)


def test_cancelling_a_stack_stops_between_planes_and_keeps_the_viewer_usable(widget, qtbot):
    viewer = widget.viewer
    data = np.concatenate([_sample_data.through_focus_stack()[0][0]] * 3)  # 63 planes
    viewer.add_image(data, name="long stack", scale=(2.0, 0.65, 0.65))
    widget.layer.value = "long stack"
    seen = []

    def cancel_after_the_first_plane(progress):
        seen.append(progress)
        if len(seen) == 1:
            widget.cancel()

    widget.measure_button.native.click()
    widget.worker.yielded.connect(cancel_after_the_first_plane)
    qtbot.waitUntil(lambda: not widget.busy, timeout=WAIT_MS)
    assert widget.stack_result is None
    assert 1 <= len(seen) < len(data)
    # The viewer still works: a new measurement runs.
    widget.layer.value = "long stack"
    widget.axis.value = widget.axis.choices[0]  # the plane shown
    click(qtbot, widget, widget.measure_button)
    assert widget.image_outcome is not None


# napari holds no zero-size image layer, so "empty" is a 1 x 1 layer, a blank one and one of pure noise.
@pytest.mark.parametrize("kind", ["rgb", "labels", "empty", "blank", "noise only", "float without a scale"])
def test_layers_focusnet_cannot_measure_give_a_notification_not_a_crash(widget, qtbot, kind):
    viewer = widget.viewer
    before = len(viewer.layers)
    if kind == "rgb":
        viewer.add_image(np.zeros((200, 200, 3), np.uint8), rgb=True, name="bad")
        expected = "RGB"
    elif kind == "labels":
        viewer.add_labels(np.zeros((200, 200), np.int32), name="bad")
        expected = "Labels layer"
    elif kind == "empty":
        viewer.add_image(np.zeros((1, 1), np.uint16), name="bad")
        expected = "smaller than one 84x84 patch"
    elif kind == "blank":
        viewer.add_image(np.zeros((200, 200), np.uint16), name="bad")
        expected = "constant image"
    elif kind == "noise only":
        viewer.add_image(np.random.default_rng(0).poisson(100, (300, 300)).astype(np.uint16), name="bad")
        expected = "no content"
    else:
        viewer.add_image(np.random.default_rng(0).random((200, 200)), name="bad")
        expected = "explicit scale"
    widget.layer.value = "bad"
    click(qtbot, widget, widget.measure_button)
    assert expected in widget.last_error
    assert len(viewer.layers) == before + 1  # no result layer


def test_refocus_adds_the_refocused_plane_with_its_levels(widget, qtbot):
    viewer = widget.viewer
    layer = add_sample(viewer, _sample_data.through_focus_stack)
    viewer.dims.set_current_step(0, _sample_data.STACK_FOCUS + 3)  # three levels out of focus
    widget.layer.value = layer.name
    click(qtbot, widget, widget.refocus_button)
    assert widget.last_error == ""
    refocused = viewer.layers[layer.name + REFOCUSED_SUFFIX]
    assert refocused.data.shape == layer.data.shape[1:] and refocused.data.dtype == layer.data.dtype
    before = predict_image(layer.data[_sample_data.STACK_FOCUS + 3], load_model(), pixel_size_um=0.65)
    after = predict_image(refocused.data, load_model(), pixel_size_um=0.65)
    assert after.defocus_level < before.defocus_level


def test_focusnets_reader_keeps_the_pixel_size_and_z_step_that_naparis_loses(widget, tmp_path):
    import tifffile

    viewer = widget.viewer
    stack = np.random.default_rng(0).integers(100, 1000, (5, 2, 120, 130)).astype(np.uint16)
    path = tmp_path / "two_channels.tif"
    tifffile.imwrite(path, stack, imagej=True, resolution=(1 / 0.13, 1 / 0.13),
                     metadata={"spacing": 0.3, "unit": "um", "axes": "ZCYX", "Labels": ["DAPI", "GFP"] * 5})
    (builtin,) = viewer.open(path, plugin="napari")
    assert tuple(builtin.scale) == (1.0, 1.0, 1.0, 1.0)  # what the built-in reader keeps
    layers = viewer.open(path, plugin="focusnet")
    assert [layer.data.shape for layer in layers] == [(5, 120, 130)] * 2
    np.testing.assert_allclose(layers[0].scale, (0.3, 0.13, 0.13), rtol=1e-6)
    widget.layer.value = layers[1].name
    request = widget.request()
    assert request.axis == 0 and request.z_step_um == pytest.approx(0.3)
    assert request.stated_pixel_size_um == pytest.approx(0.13)
    np.testing.assert_array_equal(request.plane(2), stack[2, 1])
    plane = tmp_path / "plane.tif"
    tifffile.imwrite(plane, stack[0, 0], imagej=True, resolution=(1 / 0.5, 1 / 0.5), metadata={"unit": "um"})
    (single,) = viewer.open(plane, plugin="focusnet")
    assert single.data.shape == (120, 130)
    np.testing.assert_allclose(single.scale, (0.5, 0.5), rtol=1e-6)


def test_the_benchmark_runs(tmp_path):
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / "napari_widget.py"), "--smoke", "--json",
                             str(tmp_path / "napari.json")], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "widget / library" in result.stdout


def test_screenshot_of_the_overlay_and_the_focus_curve(widget, qtbot, tmp_path):
    viewer = widget.viewer
    stack = add_sample(viewer, _sample_data.through_focus_stack)
    widget.layer.value = stack.name
    click(qtbot, widget, widget.measure_button)  # draws the stack's focus curve in the widget
    qtbot.waitUntil(lambda: len(widget.figure.axes) > 0, timeout=WAIT_MS)
    stack.visible = False
    image = add_sample(viewer, _sample_data.in_focus_image)
    widget.layer.value = image.name
    click(qtbot, widget, widget.measure_button)  # the 2-D overlay; the curve stays drawn
    viewer.window._qt_window.resize(1500, 950)
    viewer.reset_view()
    folder = Path(SCREENSHOTS) if SCREENSHOTS else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    shot = viewer.screenshot(str(folder / "napari_measure_focus.png"), canvas_only=False)
    assert shot.shape[0] > 300 and shot.shape[1] > 600
    assert (folder / "napari_measure_focus.png").stat().st_size > 10_000


def test_a_fresh_install_of_the_napari_extra_shows_the_widget_in_the_plugin_menu(tmp_path):
    # The wheel with [napari] in a new virtual environment, versions pinned by this environment's lock.
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", "-w",
                    str(tmp_path / "dist"), str(REPO)], check=True, capture_output=True, timeout=600)
    (wheel,) = (tmp_path / "dist").glob("focusnet-*.whl")
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True, timeout=600)
    python = tmp_path / "venv" / "bin" / "python"
    installed = subprocess.run([str(python), "-m", "pip", "install", "--quiet", f"{wheel}[napari]", "-c",
                                str(REPO / "requirements" / "napari.lock")], capture_output=True, text=True,
                               timeout=900)
    assert installed.returncode == 0, installed.stderr[-3000:]
    check = ("import napari\n"
             "viewer = napari.Viewer(show=False)\n"
             "dock, widget = viewer.window.add_plugin_dock_widget('focusnet', 'Measure focus')\n"
             "print(type(widget).__name__)\n"
             "viewer.open_sample('focusnet', 'through_focus_stack')\n"
             "print(viewer.layers[-1].data.shape)\n")
    shown = subprocess.run([str(python), "-c", check], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert shown.stdout.split() == ["MeasureFocusWidget", "(21,", "336,", "420)"]


def test_saving_over_a_file_an_open_layer_was_read_from_is_refused(widget, qtbot, tmp_path):
    import tifffile

    from focusnet.errors import InvalidParameterError

    path = tmp_path / "image.tif"
    shutil.copy(REPO / "examples" / "images" / "BBBC006_z_aligned__a07__s1__w1_10.tif", path)
    before = path.read_bytes()
    (layer,) = widget.viewer.open(path, plugin="focusnet")
    widget.layer.value = layer.name
    click(qtbot, widget, widget.measure_button)
    assert widget.image_outcome is not None
    with pytest.raises(InvalidParameterError, match="is an input"):
        widget.save_csv(path)
    assert path.read_bytes() == before and tifffile.imread(path).shape == layer.data.shape
    assert sorted(p.name for p in tmp_path.iterdir()) == ["image.tif"]
