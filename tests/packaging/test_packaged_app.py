"""MeasureImageFocus as users of the packaged CellProfiler 4.2 apps get it.

Those apps run Python 3.8 with numpy 1.23 and have neither focusnet nor TensorFlow. The 'app'
environment (scripts/make-env.sh app) rebuilds that Python with CellProfiler 4.2.8.1. The module,
told it is frozen as in the apps, gives the command that installs what it misses; that command
(pip install --target the plugins folder, run from another Python) installs focusnet's wheel and
onnxruntime, and CellProfiler runs the pipelines headless with that folder as its plugins
directory.
"""

import functools
import json
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from conftest import APP_CELLPROFILER, REPO, pip_environment, run_cellprofiler, run_pipeline
from helpers import check_measure_focus_rows

PLUGIN = REPO / "plugins" / "measureimagefocus.py"
APP_PYTHON = APP_CELLPROFILER.parent / "python"
#: What the plugin asks app users to install besides focusnet (plugins/measureimagefocus.py, APP_PACKAGES).
RUNTIME_PACKAGES = ["onnx", "onnxruntime", "protobuf"]

if not APP_CELLPROFILER.is_file():
    pytest.skip(f"the packaged-app environment is missing ({APP_CELLPROFILER.parent.parent}); build it with "
                "'make app-env' (make test does)", allow_module_level=True)


FROZEN_MESSAGE = """
import sys
sys.frozen = True  # as PyInstaller sets it in the packaged apps: the module then gives the app users' command
sys.path.insert(0, sys.argv[1])
import cellprofiler_core.preferences as preferences
preferences.set_headless()
import measureimagefocus
print(measureimagefocus.missing_requirements())
"""


def plugins_folder(path, *packages):
    """A plugins folder holding the plugin, with ``packages`` installed beside it."""
    path.mkdir()
    shutil.copy(PLUGIN, path)
    if packages:
        command = [str(path if token == str(APP_COMMAND_FOLDER) else token) for token in app_command()]
        command = command[:command.index("focusnet")] + [str(package) for package in packages]
        result = subprocess.run([sys.executable, *command[1:]], capture_output=True, text=True, timeout=900,
                                env=pip_environment())
        assert result.returncode == 0, result.stderr[-3000:]
    return path


APP_COMMAND_FOLDER = Path(tempfile.gettempdir()) / "focusnet-app-plugins"


@functools.lru_cache
def app_command():
    """The command the module gives users of the packaged apps when focusnet is missing, as arguments."""
    shutil.rmtree(APP_COMMAND_FOLDER, ignore_errors=True)
    APP_COMMAND_FOLDER.mkdir()
    shutil.copy(PLUGIN, APP_COMMAND_FOLDER)
    result = subprocess.run([str(APP_PYTHON), "-c", FROZEN_MESSAGE, str(APP_COMMAND_FOLDER)], capture_output=True,
                            text=True, timeout=300, cwd=APP_COMMAND_FOLDER)
    shutil.rmtree(APP_COMMAND_FOLDER)
    message = result.stdout
    assert "needs the focusnet package" in message and "(the packaged app, Python 3.8)" in message, result.stderr
    command = shlex.split(message.splitlines()[1])  # the indented line after "... with:"
    assert command[:4] == ["python", "-m", "pip", "install"]
    assert command[command.index("--target") + 1] == str(APP_COMMAND_FOLDER)  # into the plugin's own folder
    assert command[command.index("focusnet"):] == ["focusnet", *RUNTIME_PACKAGES]
    return command


@pytest.fixture(scope="module")
def app_plugins(tmp_path_factory, distributions):
    """The plugins folder of an app user who ran the module's command (focusnet as the wheel built here)."""
    return plugins_folder(tmp_path_factory.mktemp("app") / "plugins", distributions.wheel, *RUNTIME_PACKAGES)


def test_the_app_environment_is_the_packaged_apps_python(tmp_path):
    probe = subprocess.run(
        [str(APP_PYTHON), "-c", "import sys, importlib.util as u, numpy, cellprofiler_core; "
         "print('%d.%d' % sys.version_info[:2], numpy.__version__[:4], cellprofiler_core.__version__, "
         "[n for n in ('tensorflow', 'focusnet', 'onnxruntime') if u.find_spec(n)])"],
        capture_output=True, text=True, check=True, cwd=tmp_path)
    assert probe.stdout.split() == ["3.8", "1.23", "4.2.8.1", "[]"]


def test_the_packaged_app_measures_as_tensorflow_does(app_plugins, image_folder, focusnet_predict, tmp_path):
    # The plugin finds the shipped model inside the installed wheel (no model settings) and, without
    # TensorFlow, runs its ONNX form: every value within 1e-5 of focusnet predict with TensorFlow.
    rows, result = run_pipeline("measure_focus.cppipe", image_folder, tmp_path / "out",
                                cellprofiler=APP_CELLPROFILER, plugins=app_plugins)
    check_measure_focus_rows(rows, result, image_folder, focusnet_predict, tmp_path / "out")



def test_the_packaged_app_refocuses_with_onnxruntime(app_plugins, in_focus_image, tmp_path):
    # RefocusImage beside MeasureImageFocus, in the app's Python 3.8 without TensorFlow: the refocus model and the
    # classifier both run with onnxruntime from the installed wheel.
    from focusnet.images import write_tiff
    from focusnet.refocus.model import load_refocus_model
    from focusnet.simulate import degrade

    plugins = shutil.copytree(app_plugins, tmp_path / "plugins")
    shutil.copy(REPO / "plugins" / "refocusimage.py", plugins)
    images = tmp_path / "images"
    images.mkdir()
    write_tiff(images / "blurred.tif", degrade(in_focus_image, 3, optics=load_refocus_model().optics, seed=8))
    rows, result = run_pipeline("refocus_nuclei.cppipe", images, tmp_path / "out", cellprofiler=APP_CELLPROFILER,
                                plugins=plugins)
    (row,) = rows
    assert row["Refocus_Refocused_DNA"] == "1.0", result.stdout[-2000:] + result.stderr[-2000:]
    assert float(row["Refocus_DefocusLevelAfter_DNA"]) < float(row["Refocus_DefocusLevelBefore_DNA"])
    assert float(row["Count_Nuclei"]) > 20 and (tmp_path / "out" / "blurred_refocused.tiff").is_file()

def check_stops_before_the_first_image(folder, image_folder, tmp_path, *expected):
    """A headless run stops before measuring with ``expected`` in its output, and the GUI's check says the same."""
    out = tmp_path / "out"
    result = run_cellprofiler(REPO / "pipelines" / "measure_focus.cppipe", image_folder, out,
                              cellprofiler=APP_CELLPROFILER, plugins=folder)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert not (out / "Image.csv").exists()
    assert "measureimagefocus.py" not in output  # no traceback from the module (CellProfiler prints MySQL's)
    for text in expected:
        assert text in output
    # The GUI checks each module with test_valid (settings, then validate_module) and shows its error.
    pipeline = REPO / "pipelines" / "measure_focus.cppipe"
    gui = subprocess.run([str(APP_PYTHON), "-c", GUI_CHECK, str(folder), str(pipeline)], capture_output=True,
                         text=True, timeout=300, cwd=tmp_path)
    assert gui.stdout.startswith("ValidationError: "), gui.stdout + gui.stderr[-3000:]
    for text in expected:
        assert text in gui.stdout
    return output


GUI_CHECK = """
import sys
import cellprofiler_core.preferences as preferences
preferences.set_headless()
preferences.set_plugin_directory(sys.argv[1], globally=False)
from cellprofiler_core.pipeline import Pipeline
from cellprofiler_core.setting import ValidationError
from cellprofiler_core.utilities.core.modules import fill_modules
fill_modules()
pipeline = Pipeline()
pipeline.load(sys.argv[2])
(module,) = [m for m in pipeline.modules() if m.module_name == "MeasureImageFocus"]
try:
    module.test_valid(pipeline)
except ValidationError as error:
    print("ValidationError: " + error.message)
else:
    print("valid")
"""


def test_without_focusnet_the_module_says_what_to_install_before_the_first_image(image_folder, tmp_path):
    folder = plugins_folder(tmp_path / "plugins")  # the plugin file alone
    output = check_stops_before_the_first_image(folder, image_folder, tmp_path, "needs the focusnet package",
                                                '-m pip install "focusnet[onnx]"')
    assert str(APP_PYTHON.parent) in output  # the Python to install into


def test_without_onnxruntime_the_module_says_what_to_install_before_the_first_image(image_folder, tmp_path,
                                                                                    distributions):
    folder = plugins_folder(tmp_path / "plugins", distributions.wheel)
    check_stops_before_the_first_image(folder, image_folder, tmp_path, "needs onnxruntime to run its model",
                                       "onnx and onnxruntime cannot be imported", '-m pip install "focusnet[onnx]"')


@pytest.mark.parametrize("system", ["Windows", "macOS"])
def test_the_documented_commands_for_the_apps_find_wheels_for_their_python(system, distributions, tmp_path):
    # docs/cellprofiler.md's command for each app, resolved for real (pip --dry-run, no install);
    # focusnet is the wheel built here until it is on PyPI.
    text = (REPO / "docs" / "cellprofiler.md").read_text()
    (block,) = [block for block in text.split("```")[1::2] if block.lstrip("batsh\n").lstrip(": #").startswith(system)]
    line = " ".join(row.split("::")[0].strip().rstrip("\\^") for row in block.splitlines()[1:]
                    if row.strip() and not row.lstrip().startswith(("#", "::")))
    command = shlex.split(line)
    assert command[:4] in (["py", "-m", "pip", "install"], ["python3", "-m", "pip", "install"])
    command[command.index("--target") + 1] = str(tmp_path / "plugins")
    command[command.index("focusnet")] = str(distributions.wheel)
    report = tmp_path / "report.json"
    result = subprocess.run([sys.executable, *command[1:], "--dry-run", "--quiet", "--report", str(report)],
                            capture_output=True, text=True, timeout=600, env=pip_environment())
    assert result.returncode == 0, result.stderr[-3000:]
    installed = {item["metadata"]["name"] for item in json.loads(report.read_text())["install"]}
    assert installed == {"focusnet", *RUNTIME_PACKAGES}
