"""The MeasureImageFocus CellProfiler module, with CellProfiler's own objects."""

import io
import logging
import sys

import numpy as np
import pytest

from conftest import REPO

# The main and CellProfiler 5 environments have CellProfiler (tests/integration/test_cellprofiler_environment.py
# checks the main one's).
pytest.importorskip("cellprofiler_core")
import cellprofiler_core.preferences  # noqa: E402

cellprofiler_core.preferences.set_headless()  # first, before other CellProfiler imports
# CellProfiler 5 loads plugins once, when cellprofiler_core.modules is first imported.
cellprofiler_core.preferences.set_plugin_directory(str(REPO / "plugins"), globally=False)

from cellprofiler_core.image import Image, ImageSetList  # noqa: E402
from cellprofiler_core.measurement import Measurements  # noqa: E402
from cellprofiler_core.object import ObjectSet  # noqa: E402
from cellprofiler_core.pipeline import Pipeline  # noqa: E402
from cellprofiler_core.setting import ValidationError  # noqa: E402
from cellprofiler_core.workspace import Workspace  # noqa: E402

sys.path.insert(0, str(REPO / "plugins"))
import measureimagefocus as plugin  # noqa: E402

from focusnet.contract import SHIPPED_BUNDLE as DEFAULT_BUNDLE  # noqa: E402
from focusnet.images import read_image  # noqa: E402
from focusnet.inference import predict_image  # noqa: E402
from focusnet.loader import load_model  # noqa: E402


def make_workspace(images, module=None, file_names=None):
    """A one-image-set workspace holding ``{name: Image}`` and the module."""
    module = module or plugin.MeasureImageFocus()
    module.set_module_num(1)
    pipeline = Pipeline()
    pipeline.add_module(module)
    image_set_list = ImageSetList()
    image_set = image_set_list.get_image_set(0)
    measurements = Measurements()
    for name, image in images.items():
        image_set.add(name, image)
        if file_names and name in file_names:
            measurements.add_image_measurement(f"FileName_{name}", file_names[name])
    workspace = Workspace(pipeline, module, image_set, ObjectSet(), measurements, image_set_list)
    return workspace, module


def configure(module, names, overlay=False):
    while len(module.image_groups) < len(names):
        module.add_image()
    for group, name in zip(module.image_groups, names):
        group.image_name.value = name
        group.wants_overlay.value = overlay
        group.overlay_name.value = f"Overlay{name}"


@pytest.fixture(scope="module")
def raw_images(in_focus_paths, out_of_focus_paths):
    return {"DNA": read_image(in_focus_paths[-1]), "Blurry": read_image(out_of_focus_paths[0])}


def test_measurements_equal_focusnet_predict(raw_images):
    images = {name: Image(raw / 65535.0, scale=65535) for name, raw in raw_images.items()}
    workspace, module = make_workspace(images)
    configure(module, list(images), overlay=True)
    module.run(workspace)
    m = workspace.measurements
    bundle = load_model(DEFAULT_BUNDLE)
    for name, raw in raw_images.items():
        expected = predict_image(raw, bundle)
        assert m.get_current_image_measurement(f"ImageFocus_DefocusLevel_{name}") == expected.defocus_level
        assert m.get_current_image_measurement(f"ImageFocus_AggregateCertainty_{name}") == pytest.approx(
            expected.aggregate_certainty, abs=1e-6)
        assert m.get_current_image_measurement(f"ImageFocus_MeanCertainty_{name}") == pytest.approx(
            expected.mean_certainty, abs=1e-6)
        probabilities = [m.get_current_image_measurement(f"ImageFocus_ProbabilityLevel{k}_{name}") for k in range(11)]
        np.testing.assert_allclose(probabilities, expected.distribution, atol=1e-6)
        assert m.get_current_image_measurement(f"ImageFocus_PatchCount_{name}") == 48
        overlay = workspace.image_set.get_image(f"Overlay{name}")
        assert overlay.pixel_data.shape == raw.shape + (3,)
    assert m.get_current_image_measurement("ImageFocus_DefocusLevel_DNA") <= 1
    assert m.get_current_image_measurement("ImageFocus_DefocusLevel_Blurry") >= 3


def test_12_bit_image_is_measured_from_its_raw_counts(raw_images):
    # 12-bit data: CellProfiler divides by 4095, not 65535.
    raw12 = np.round(raw_images["DNA"].astype(float) * 4095 / raw_images["DNA"].max()).astype(np.uint16)
    workspace, module = make_workspace({"DNA": Image(raw12 / 4095.0, scale=4095)})
    configure(module, ["DNA"])
    module.run(workspace)
    expected = predict_image(raw12, load_model(DEFAULT_BUNDLE))
    got = workspace.measurements.get_current_image_measurement("ImageFocus_AggregateCertainty_DNA")
    assert got == pytest.approx(expected.aggregate_certainty, abs=1e-6)
    # Misreading the scale would change the answer: the check above can fail.
    wrong = predict_image(raw12 / 4095.0, load_model(DEFAULT_BUNDLE), scale=65535)
    assert abs(wrong.aggregate_certainty - expected.aggregate_certainty) > 1e-4


def test_too_small_image_gets_nan_and_a_warning_naming_it(caplog):
    small = Image(np.random.default_rng(0).random((60, 200)), scale=65535)
    workspace, module = make_workspace({"DNA": small}, file_names={"DNA": "plate1_A01_tiny.tif"})
    configure(module, ["DNA"], overlay=True)
    with caplog.at_level(logging.WARNING):
        module.run(workspace)
    m = workspace.measurements
    for feature in plugin.FEATURES:
        value = m.get_current_image_measurement(f"ImageFocus_{feature}_DNA")
        expected = {"PatchCount": 0, "PixelSizeUm": 0.65}.get(feature)
        assert (value == expected) if expected is not None else np.isnan(value), feature
    assert "plate1_A01_tiny.tif" in caplog.text and "smaller than one" in caplog.text
    assert workspace.image_set.get_image("OverlayDNA").pixel_data.shape == (60, 200, 3)


def test_a_too_noisy_image_gets_nan_a_judged_fraction_of_0_and_a_warning_saying_so(raw_images, caplog):
    # The bright image at 1 % of its light (binomial thinning of its raw counts): content, none judged.
    from focusnet.photons import binomial_thinning, photon_transfer

    bright = raw_images["DNA"]
    gain, offset = photon_transfer(bright)
    dim = binomial_thinning(bright, 0.01, offset, gain, np.random.default_rng(1))
    images = {"DNA": Image(dim / 65535.0, scale=65535), "Bright": Image(bright / 65535.0, scale=65535)}
    workspace, module = make_workspace(images, file_names={"DNA": "plate1_B02_dim.tif"})
    configure(module, list(images))
    with caplog.at_level(logging.WARNING):
        module.run(workspace)
    m = workspace.measurements
    assert np.isnan(m.get_current_image_measurement("ImageFocus_DefocusLevel_DNA"))
    assert m.get_current_image_measurement("ImageFocus_JudgedFraction_DNA") == 0
    assert m.get_current_image_measurement("ImageFocus_ContentFraction_DNA") > 0
    assert "plate1_B02_dim.tif" in caplog.text and "too noisy to judge" in caplog.text
    expected = predict_image(bright, load_model(DEFAULT_BUNDLE))
    assert m.get_current_image_measurement("ImageFocus_JudgedFraction_Bright") == pytest.approx(
        expected.judged_fraction) and 0 < expected.judged_fraction <= expected.content_fraction


def nan_row_with_warning(module, workspace, caplog, *expected):
    with caplog.at_level(logging.WARNING):
        module.run(workspace)  # never raises for one bad image
    assert np.isnan(workspace.measurements.get_current_image_measurement("ImageFocus_DefocusLevel_DNA"))
    for text in expected:
        assert text in caplog.text, caplog.text


def test_colour_and_3d_images_get_nan_and_a_clear_warning(caplog):
    workspace, module = make_workspace({"DNA": Image(np.zeros((100, 100, 3)), scale=255)})
    configure(module, ["DNA"], overlay=True)
    nan_row_with_warning(module, workspace, caplog, "colour image")
    workspace, module = make_workspace({"DNA": Image(np.zeros((5, 100, 100)), scale=65535, dimensions=3)})
    configure(module, ["DNA"])
    nan_row_with_warning(module, workspace, caplog, "3-D")


def test_float_images_are_not_guessed(raw_images, caplog):
    # CellProfiler hands floating-point images over with scale 1.0: their counts are unknown.
    counts = raw_images["DNA"]
    workspace, module = make_workspace({"DNA": Image(counts / 65535.0, scale=1.0)}, file_names={"DNA": "f.tif"})
    configure(module, ["DNA"])
    nan_row_with_warning(module, workspace, caplog, "f.tif", "floating-point", module.float_scale.text)
    module.float_scale.value = 65535.0
    module.run(workspace)
    expected = predict_image(counts, load_model(DEFAULT_BUNDLE))
    assert workspace.measurements.get_current_image_measurement("ImageFocus_AggregateCertainty_DNA") == \
        pytest.approx(expected.aggregate_certainty, abs=1e-5)


def test_32_bit_integer_images_are_measured_from_their_counts(raw_images):
    counts = raw_images["DNA"]
    workspace, module = make_workspace({"DNA": Image(counts / 4294967295.0, scale=4294967295)})
    configure(module, ["DNA"])
    module.run(workspace)
    expected = predict_image(counts, load_model(DEFAULT_BUNDLE))
    assert workspace.measurements.get_current_image_measurement("ImageFocus_AggregateCertainty_DNA") == \
        pytest.approx(expected.aggregate_certainty, abs=1e-5)


@pytest.mark.parametrize("pixels,scale,message", [
    (np.full((100, 100), np.nan), 65535, "NaN or infinite"),
    (np.full((100, 100), -0.01), 32767, "float pixels must lie in [0, 1]"),
    (np.full((100, 100), 3.0), 65535, "float pixels must lie in [0, 1]"),
    (np.full((100, 100), 0.5), None, "no intensity scale"),
], ids=["NaN", "negative int16", "above the scale", "rescaled"])
def test_values_that_are_not_counts_get_nan_and_a_warning(pixels, scale, message, caplog):
    workspace, module = make_workspace({"DNA": Image(pixels, scale=scale)})
    configure(module, ["DNA"], overlay=True)
    nan_row_with_warning(module, workspace, caplog, message)
    assert workspace.image_set.get_image("OverlayDNA").pixel_data.shape == (100, 100, 3)


def test_measurement_bookkeeping_agrees_with_run(raw_images):
    images = {name: Image(raw / 65535.0, scale=65535) for name, raw in raw_images.items()}
    workspace, module = make_workspace(images)
    configure(module, list(images))
    module.run(workspace)
    pipeline = workspace.pipeline
    columns = module.get_measurement_columns(pipeline)
    written = {f for f in workspace.measurements.get_feature_names("Image") if f.startswith("ImageFocus_")}
    assert {c[1] for c in columns} == written
    assert all(c[0] == "Image" for c in columns)
    types = {c[1]: c[2] for c in columns}
    assert types["ImageFocus_PatchCount_DNA"].startswith("integer")
    assert types["ImageFocus_DefocusLevel_DNA"] == "float"
    assert module.get_categories(pipeline, "Image") == ["ImageFocus"]
    assert module.get_categories(pipeline, "Nuclei") == []
    features = module.get_measurements(pipeline, "Image", "ImageFocus")
    from_categories = {f"ImageFocus_{feature}_{image}" for feature in features
                       for image in module.get_measurement_images(pipeline, "Image", "ImageFocus", feature)}
    assert from_categories == written


def test_missing_or_damaged_bundle_fails_before_the_first_image(tmp_path):
    workspace, module = make_workspace({})
    module.model_choice.value = plugin.MODEL_CUSTOM
    module.model_directory.value = f"Elsewhere...|{tmp_path}"
    module.model_file.value = "missing.zip"
    with pytest.raises(ValidationError, match="model bundle not found") as raised:
        module.validate_module(workspace.pipeline)
    assert raised.value.get_setting() is module.model_file
    (tmp_path / "broken.zip").write_bytes(b"PK\x03\x04 garbage")
    module.model_file.value = "broken.zip"
    with pytest.raises(ValidationError, match="refused"):
        module.validate_module(workspace.pipeline)
    # Headless runs never call validate_module: prepare_run refuses to start.
    errors = []
    workspace.pipeline.report_prepare_run_error = lambda mod, message: errors.append((mod, message))
    assert module.prepare_run(workspace) is False
    assert errors and "Model bundle file" in errors[0][1]


def test_the_help_says_how_to_install_and_what_to_cite():
    assert "Installing" in plugin.__doc__ and '"focusnet[onnx]"' in plugin.__doc__
    assert "--python-version 3.8" in plugin.__doc__  # the packaged apps' way
    assert plugin.MeasureImageFocus.doi and "10.1186/s12859-018-2087-4" in plugin.__doc__


def test_shipped_bundle_passes_the_checks():
    workspace, module = make_workspace({})
    module.validate_module(workspace.pipeline)
    assert module.prepare_run(workspace) is True


def test_importing_the_plugin_does_not_import_tensorflow():
    import subprocess

    code = ("import sys; sys.path.insert(0, %r); import cellprofiler_core.preferences as p; p.set_headless(); "
            "import measureimagefocus; print('tensorflow' in sys.modules)" % str(REPO / "plugins"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


OLD_PIPELINE = """CellProfiler Pipeline: http://www.cellprofiler.org
Version:5
DateRevision:413
GitHash:
ModuleCount:1
HasImagePlaneDetails:False

MeasureImageFocus:[module_num:1|svn_version:'Unknown'|variable_revision_number:1|show_window:False|notes:[]|batch_state:array([], dtype=uint8)|enabled:True|wants_pause:False]
    Select an image to measure:OrigBlue
"""


def load_pipeline(text):
    from cellprofiler_core.constants.modules import all_modules
    from cellprofiler_core.preferences import set_plugin_directory
    from cellprofiler_core.utilities.core.modules import fill_modules

    set_plugin_directory(str(REPO / "plugins"), globally=False)
    # CellProfiler 5 has loaded the plugin with its modules, and filling them again would lose it.
    if "MeasureImageFocus" not in all_modules:
        fill_modules()
    pipeline = Pipeline()
    errors = []
    pipeline.add_listener(lambda caller, event: errors.append(event) if "LoadException" in type(event).__name__
                          else None)
    pipeline.load(io.StringIO(text))
    assert not errors, errors
    return pipeline


def test_pipelines_saved_with_the_old_plugin_load():
    pipeline = load_pipeline(OLD_PIPELINE)
    (module,) = pipeline.modules()
    assert isinstance(module, plugin.MeasureImageFocus) or type(module).__name__ == "MeasureImageFocus"
    assert module.image_groups[0].image_name.value == "OrigBlue"
    assert module.model_choice.value == plugin.MODEL_SHIPPED
    assert module.image_groups[0].wants_overlay.value is False


def test_saved_pipeline_round_trips():
    module = plugin.MeasureImageFocus()
    module.set_module_num(1)
    configure(module, ["DNA", "Actin"], overlay=True)
    module.image_groups[1].wants_overlay.value = False
    module.image_groups[0].wants_overlay_file.value = True
    module.image_groups[0].overlay_folder.value = "Elsewhere...|/data/overlays"
    module.float_scale.value = 4095.0
    pipeline = Pipeline()
    pipeline.add_module(module)
    text = io.StringIO()
    pipeline.dump(text)
    (loaded,) = load_pipeline(text.getvalue()).modules()
    assert [g.image_name.value for g in loaded.image_groups] == ["DNA", "Actin"]
    assert [g.wants_overlay.value for g in loaded.image_groups] == [True, False]
    assert loaded.image_groups[0].overlay_name.value == "OverlayDNA"
    assert loaded.float_scale.value == 4095.0  # a setting's text holds no colon: its value reads back
    assert loaded.variable_revision_number == 8
    assert [g.wants_overlay_file.value for g in loaded.image_groups] == [True, False]
    assert loaded.image_groups[0].overlay_folder.get_absolute_path() == "/data/overlays"
    assert loaded.legacy_measurements.value is False  # new pipelines do not write the old names


def test_a_confocal_converts_defocus_with_its_own_axial_scale_and_old_pipelines_are_widefield(raw_images):
    # A pipeline saved at revision 6, before the microscope setting, loads as widefield.
    text = _at_revision_7((REPO / "pipelines" / "measure_focus.cppipe").read_text())
    text = text.replace("    Microscope:Widefield\n", "").replace("    Pinhole diameter (Airy units):1.0\n", "")
    text = text.replace("variable_revision_number:7|show_window:False", "variable_revision_number:6|show_window:False")
    (old,) = [m for m in load_pipeline(text).modules() if m.module_name == "MeasureImageFocus"]
    assert old.modality.value == plugin.MICROSCOPE_WIDEFIELD and old.variable_revision_number == 8
    microns = {}
    for microscope in (plugin.MICROSCOPE_WIDEFIELD, plugin.MICROSCOPE_CONFOCAL):
        workspace, module = make_workspace({"Blurry": Image(raw_images["Blurry"] / 65535.0, scale=65535)})
        configure(module, ["Blurry"])
        module.wants_objective.value = True
        module.numerical_aperture.value, module.refractive_index.value = 1.2, 1.33
        module.modality.value = microscope
        assert (module.pinhole in module.visible_settings()) == (microscope != plugin.MICROSCOPE_WIDEFIELD)
        module.run(workspace)
        microns[microscope] = workspace.measurements.get_current_image_measurement("ImageFocus_DefocusUm_Blurry")
    assert microns[plugin.MICROSCOPE_CONFOCAL] > microns[plugin.MICROSCOPE_WIDEFIELD] > 0


def _at_revision_7(text):
    """The shipped pipeline's text as revision 7 saved it: without the overlay-file settings of revision 8."""
    lines = [line for line in text.splitlines(keepends=True)
             if not line.startswith(("    Save the overlay as a PNG file?:", "    Folder for the overlay files:"))]
    text = "".join(lines)
    assert "MeasureImageFocus:[module_num:5|svn_version:'Unknown'|variable_revision_number:8|" in text
    return text.replace("variable_revision_number:8|show_window:False", "variable_revision_number:7|show_window:False")


def test_a_revision_7_pipeline_loads_without_overlay_files():
    (module,) = [m for m in load_pipeline(_at_revision_7((REPO / "pipelines" / "measure_focus.cppipe").read_text()))
                 .modules() if m.module_name == "MeasureImageFocus"]
    assert module.variable_revision_number == 8 and module.image_groups[0].wants_overlay.value is True
    assert module.image_groups[0].wants_overlay_file.value is False
    assert module.image_groups[0].overlay_folder.dir_choice == "Default Output Folder"


def test_overlay_files_are_written_whole_named_by_image_and_never_replace_other_files(raw_images, tmp_path):
    from focusnet.figures import is_focusnet_overlay

    def measure(file_name):
        workspace, module = make_workspace({"DNA": Image(raw_images["DNA"] / 65535.0, scale=65535)},
                                           module=shared, file_names={"DNA": file_name})
        shared.run(workspace)
        return workspace

    shared = plugin.MeasureImageFocus()
    configure(shared, ["DNA"], overlay=True)
    group = shared.image_groups[0]
    group.wants_overlay_file.value = True
    group.overlay_folder.value = f"Elsewhere...|{tmp_path / 'overlays'}"
    assert group.overlay_folder in shared.visible_settings()
    measure("well_A01.tif")
    first = tmp_path / "overlays" / "well_A01_focus.png"
    assert is_focusnet_overlay(first) and not list(first.parent.glob(".*partial*"))
    before = first.read_bytes()
    measure("well_A01.tif")  # a second image of that name in this run: its own file, the first kept
    assert first.read_bytes() == before and is_focusnet_overlay(tmp_path / "overlays" / "well_A01_image1_focus.png")
    mine = tmp_path / "overlays" / "notes_focus.png"
    mine.write_bytes(b"a file of the user's")
    measure("notes.tif")
    assert mine.read_bytes() == b"a file of the user's"


def test_a_pipeline_saved_at_revision_5_gets_its_float_scale_back():
    # Revisions 4 and 5 named that setting with a colon: pipeline files split it as text "...(0" and
    # value " do not measure them):4095.0".
    # The shipped file is at the current revision: take out what revisions 7 and 8 added.
    text = _at_revision_7((REPO / "pipelines" / "measure_focus.cppipe").read_text())
    text = text.replace("    Microscope:Widefield\n", "").replace("    Pinhole diameter (Airy units):1.0\n", "")
    text = text.replace("variable_revision_number:7|show_window:False|notes:[]|batch_state:array([], dtype=uint8)|"
                        "enabled:True|wants_pause:False]\n    Image count", "variable_revision_number:5|show_window:"
                        "False|notes:[]|batch_state:array([], dtype=uint8)|enabled:True|wants_pause:False]\n    Image "
                        "count")
    text = text.replace("(0 to not measure them):0.0", "(0: do not measure them):4095.0")
    assert "variable_revision_number:5|" in text and "(0: do not" in text and "Microscope" not in text
    module = [m for m in load_pipeline(text).modules() if m.module_name == "MeasureImageFocus"][0]
    assert module.float_scale.value == 4095.0


@pytest.mark.parametrize("name", ["measure_focus.cppipe", "focus_qc.cppipe"])
def test_the_shipped_pipelines_pass_the_guis_checks(name):
    pipeline = load_pipeline((REPO / "pipelines" / name).read_text())
    (module,) = [m for m in pipeline.modules() if m.module_name == "MeasureImageFocus"]
    module.test_valid(pipeline)


def test_an_onnx_model_measures_as_the_bundle_does(raw_images):
    # The packaged CellProfiler has no TensorFlow: the module runs an ONNX model with onnxruntime.
    pytest.importorskip("onnxruntime", reason="onnxruntime is part of the test environments")
    from focusnet.contract import SHIPPED_ONNX

    workspace, module = make_workspace({"DNA": Image(raw_images["DNA"] / 65535.0, scale=65535)})
    configure(module, ["DNA"])
    module.model_choice.value = plugin.MODEL_CUSTOM
    module.model_directory.value = f"Elsewhere...|{SHIPPED_ONNX.parent}"
    module.model_file.value = SHIPPED_ONNX.name
    module.validate_module(workspace.pipeline)
    assert type(module.load_model()).__name__ == "OnnxModel"
    module.run(workspace)
    expected = predict_image(raw_images["DNA"], load_model(DEFAULT_BUNDLE))
    measured = workspace.measurements.get_current_image_measurement
    assert measured("ImageFocus_DefocusLevel_DNA") == expected.defocus_level
    for level, probability in enumerate(expected.distribution):
        assert measured(f"ImageFocus_ProbabilityLevel{level}_DNA") == pytest.approx(probability, abs=1e-5)


def test_old_pipelines_keep_the_old_measurement_names(raw_images, caplog):
    with caplog.at_level(logging.WARNING):
        (module,) = load_pipeline(OLD_PIPELINE).modules()
    assert module.legacy_measurements.value is True
    assert "ImageFocus_Score_<image>" in caplog.text and "still written" in caplog.text
    assert module.legacy_measurements not in module.visible_settings()  # hidden, explained in its help
    module.image_groups[0].image_name.value = "DNA"
    workspace, _ = make_workspace({"DNA": Image(raw_images["Blurry"] / 65535.0, scale=65535)}, module=module)
    module.run(workspace)
    measured = workspace.measurements.get_current_image_measurement
    assert measured("ImageFocus_Score_DNA") == measured("ImageFocus_DefocusLevel_DNA") == 10
    assert measured("ImageFocus_Certainty_DNA") == measured("ImageFocus_AggregateCertainty_DNA")
    columns = {name for _, name, _ in module.get_measurement_columns(workspace.pipeline)}
    assert {"ImageFocus_Score_DNA", "ImageFocus_Certainty_DNA"} <= columns
    assert "Score" in module.get_measurements(workspace.pipeline, "Image", "ImageFocus")
