"""The RefocusImage CellProfiler module, with CellProfiler's own objects."""

import logging
import sys

import numpy as np
import pytest

from conftest import REPO

pytest.importorskip("cellprofiler_core")
import cellprofiler_core.preferences  # noqa: E402

cellprofiler_core.preferences.set_headless()
cellprofiler_core.preferences.set_plugin_directory(str(REPO / "plugins"), globally=False)

from cellprofiler_core.image import Image  # noqa: E402
from cellprofiler_core.setting import ValidationError  # noqa: E402

sys.path.insert(0, str(REPO / "plugins"))
import refocusimage as plugin  # noqa: E402
from test_plugin import make_workspace  # noqa: E402

from focusnet.optics import Optics  # noqa: E402
from focusnet.refocus.restore import refocus_image  # noqa: E402
from focusnet.simulate import degrade  # noqa: E402


def _module(model_dir):
    module = plugin.RefocusImage()
    module.input_image.value = "DNA"
    module.output_image.value = "Refocused"
    module.model_choice.value = plugin.MODEL_CUSTOM
    module.model_directory.value = f"Elsewhere...|{model_dir.parent}"
    module.model_name.value = model_dir.name
    return module


def _run(module, pixels, scale=65535.0):
    workspace, module = make_workspace({"DNA": Image(pixels, scale=scale)}, module)
    module.run(workspace)
    values = {feature: workspace.measurements.get_current_image_measurement(module.measurement_name(feature))
              for feature in plugin.FEATURES}
    return workspace.image_set.get_image("Refocused"), values


def test_a_defocused_image_is_refocused_as_focusnet_refocuses_it(refocus_model_dir, in_focus_image, model):
    blurred = degrade(in_focus_image, 3, seed=7, optics=Optics(defocus_phase="paraxial"))
    output, values = _run(_module(refocus_model_dir), blurred / 65535.0)
    expected = refocus_image(blurred.astype(np.float32), refocus_model_dir, model, scale=1.0)
    assert values["Refocused"] == 1 and values["DefocusLevelBefore"] == expected.before.defocus_level
    assert values["DefocusLevelAfter"] == expected.after.defocus_level
    assert values["Improved"] == float(expected.improved)
    np.testing.assert_allclose(output.pixel_data * 65535, expected.image, atol=0.05)
    assert output.scale == 65535.0


def test_an_in_focus_image_passes_through_unchanged(refocus_model_dir, in_focus_image):
    pixels = in_focus_image / 65535.0
    output, values = _run(_module(refocus_model_dir), pixels)
    assert values["Refocused"] == 0 and values["DefocusLevelBefore"] == 0 and np.isnan(values["DefocusLevelAfter"])
    np.testing.assert_allclose(output.pixel_data, pixels, rtol=1e-6)  # CellProfiler keeps float32


def test_a_float_image_without_its_scale_gets_nan_and_a_warning(refocus_model_dir, in_focus_image, caplog):
    pixels = (in_focus_image / 65535.0).astype(np.float32)
    with caplog.at_level(logging.WARNING):
        output, values = _run(_module(refocus_model_dir), pixels, scale=1.0)
    assert all(np.isnan(v) for v in values.values()) and "floating-point" in caplog.text
    np.testing.assert_array_equal(output.pixel_data, pixels)


def test_a_missing_model_is_refused_before_the_first_image_naming_the_setting(tmp_path):
    module = _module(tmp_path / "nowhere")
    with pytest.raises(ValidationError, match="refocus model refused") as refused:
        module.check_model()
    assert refused.value.get_setting() is module.model_name


def test_measurement_bookkeeping_agrees_with_run(refocus_model_dir):
    module = _module(refocus_model_dir)
    columns = module.get_measurement_columns(None)
    assert [c[1] for c in columns] == [f"Refocus_{f}_DNA" for f in plugin.FEATURES]
    assert module.get_categories(None, "Image") == ["Refocus"]
    assert module.get_measurement_images(None, "Image", "Refocus", "Refocused") == ["DNA"]


def test_the_refocus_pipeline_passes_the_guis_checks():
    from test_plugin import load_pipeline

    pipeline = load_pipeline((REPO / "pipelines" / "refocus_nuclei.cppipe").read_text())
    (module,) = [m for m in pipeline.modules() if m.module_name == "RefocusImage"]
    assert module.model_choice.value == plugin.MODEL_SHIPPED and module.output_image.value == "Refocused"
    module.test_valid(pipeline)
