"""Shared pieces of the benchmarks: CellProfiler's MeasureImageQuality, test images, models.

The classic focus metrics are computed by CellProfiler's own MeasureImageQuality module code
(not re-implemented): a real module instance runs on a real Workspace.
"""

import math
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
# The development data set (as the tests: FOCUSNET_SHARED_DATA, else ../shared/data).
SHARED_DATA = Path(os.environ.get("FOCUSNET_SHARED_DATA", REPO.parent / "shared" / "data"))
EXAMPLE_FLY = "cellprofiler/data/examples/ExampleFly/images"

#: The classic blur features of MeasureImageQuality (scale 20 for LocalFocusScore and Correlation).
CLASSIC_METRICS = ("FocusScore", "LocalFocusScore_DNA_20", "Correlation_DNA_20", "PowerLogLogSlope")
#: Direction of each metric: +1 if larger means sharper.
SHARPER_IF_LARGER = {"FocusScore": 1, "LocalFocusScore_DNA_20": 1, "Correlation_DNA_20": -1, "PowerLogLogSlope": 1}


def headless_cellprofiler():
    import cellprofiler_core.preferences as preferences

    preferences.set_headless()


def quality_module(scale=20):
    """A MeasureImageQuality module measuring only the blur features of image DNA."""
    headless_cellprofiler()
    from cellprofiler.modules.measureimagequality import O_SELECT, MeasureImageQuality

    module = MeasureImageQuality()
    module.set_module_num(1)
    module.images_choice.value = O_SELECT
    group = module.image_groups[0]
    group.image_names.value = "DNA"
    group.check_blur.value = True
    group.scale_groups[0].scale.value = scale
    group.check_saturation.value = False
    group.check_intensity.value = False
    group.calculate_threshold.value = False
    group.include_image_scalings.value = False
    return module


def workspace_for(module, counts):
    """A one-image workspace holding ``counts`` as CellProfiler loads a 16-bit image."""
    from cellprofiler_core.image import Image, ImageSetList
    from cellprofiler_core.measurement import Measurements
    from cellprofiler_core.object import ObjectSet
    from cellprofiler_core.pipeline import Pipeline
    from cellprofiler_core.workspace import Workspace

    pipeline = Pipeline()
    pipeline.add_module(module)
    image_set_list = ImageSetList()
    image_set = image_set_list.get_image_set(0)
    from focusnet.contract import INPUT_SCALE

    image_set.add("DNA", Image(np.asarray(counts, float) / INPUT_SCALE, scale=INPUT_SCALE))
    return Workspace(pipeline, module, image_set, ObjectSet(), Measurements(), image_set_list)


def classic_metrics(module, counts):
    """MeasureImageQuality's blur features of one image, as CellProfiler computes them."""
    workspace = workspace_for(module, counts)
    module.run(workspace)
    m = workspace.measurements
    return {name: float(m.get_current_image_measurement(f"ImageQuality_{name}" + ("" if "DNA" in name else "_DNA")))
            for name in CLASSIC_METRICS}


def power_log_log_slope_only(module, counts):
    """PowerLogLogSlope alone, with MeasureImageQuality's own method."""
    workspace = workspace_for(module, counts)
    module.calculate_power_spectrum(module.image_groups[0], workspace)
    return float(workspace.measurements.get_current_image_measurement("ImageQuality_PowerLogLogSlope_DNA"))


def in_focus_sources(held_out_only=True):
    """Paths of in-focus images; by default only those the shipped model never trained on."""
    import json

    from focusnet.contract import SHIPPED_MODEL_DIR as DEFAULT_MODEL_DIR

    config = json.loads((DEFAULT_MODEL_DIR / "config.json").read_text())
    trained = {Path(p).name for p in config["training"]["images"]}
    python = f"python{sys.version_info[0]}.{sys.version_info[1]}"
    fly = Path(sys.prefix) / "lib" / python / "site-packages" / EXAMPLE_FLY
    paths = sorted((SHARED_DATA / "bbbc006_in_focus").glob("*")) + sorted(fly.glob("*_D.TIF"))
    return [p for p in paths if not held_out_only or p.name not in trained]


def tiled_image(height, width, sources, seed=0):
    """A 16-bit image of the given size built from 84 x 84 tiles of real images."""
    from focusnet.contract import PATCH_SIZE as P
    from focusnet.images import read_image

    rng = np.random.default_rng(seed)
    images = [read_image(p).astype(np.uint16) for p in sources]
    out = np.empty((height, width), np.uint16)
    for y in range(0, height, P):
        for x in range(0, width, P):
            source = images[rng.integers(len(images))]
            sy = rng.integers(0, source.shape[0] - P + 1)
            sx = rng.integers(0, source.shape[1] - P + 1)
            tile = source[sy:sy + P, sx:sx + P]
            out[y:y + P, x:x + P] = tile[:min(P, height - y), :min(P, width - x)]
    return out


def write_zstack(path, planes, pixel_size_um: float, z_step_um: float) -> Path:
    """Write planes (ZYX) as an ImageJ stack stating its pixel size and z step, as focusnet reads them."""
    import tifffile

    tifffile.imwrite(path, planes, imagej=True, resolution=(1 / pixel_size_um,) * 2,
                     metadata={"axes": "ZYX", "spacing": z_step_um, "unit": "micron"})
    return Path(path)


def random_model(architecture_name, seed=0):
    """A model of an architecture with random weights (for timing the same code path)."""
    from focusnet.classifier import make_config
    from focusnet.model import FocusModel
    from focusnet.network import expected_weight_shapes, get_architecture
    from focusnet.optics import Optics

    rng = np.random.default_rng(seed)
    architecture = get_architecture(architecture_name)
    weights = {name: (rng.standard_normal(shape) * 0.05).astype(np.float32)
               for name, shape in expected_weight_shapes(architecture).items()}
    config = make_config(architecture_name, optics=Optics().to_dict(), augmentation={}, training={})
    return FocusModel(REPO / f"random-{architecture_name}", config, weights)


def call_seconds(function, repeats) -> list:
    """The wall time of each of ``repeats`` calls of ``function``."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        seconds.append(time.perf_counter() - start)
    return seconds


def best_seconds(function, repeats):
    """The shortest wall time of ``repeats`` calls of ``function`` (the one least disturbed by other load)."""
    return min(call_seconds(function, repeats))


def median_seconds_each(functions, repeats, block_seconds=0.2):
    """Median wall time per call of each of several functions, timed in turn.

    Each function runs once as a warm-up (graph tracing, caches), excluded. Then every
    repeat times a block of consecutive calls of each function in turn: consecutive, as in
    a batch run, where one model's weights stay in the CPU caches between images; in turn,
    so a change in machine load during the run affects all functions alike and their
    ratios stay fair. A block lasts about ``block_seconds`` (at least one call).

    Parameters
    ----------
    functions : dict of str to callable
    repeats : int
        Blocks per function; the median block's time per call is reported.
    block_seconds : float

    Returns
    -------
    dict of str to float
        Median seconds per call, by the same keys.
    """
    block_sizes = {}
    for name, function in functions.items():
        function()
        start = time.perf_counter()
        function()
        block_sizes[name] = max(1, math.ceil(block_seconds / max(time.perf_counter() - start, 1e-9)))
    times = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            for _ in range(block_sizes[name]):
                function()
            times[name].append((time.perf_counter() - start) / block_sizes[name])
    return {name: statistics.median(values) for name, values in times.items()}


def median_seconds(function, repeats):
    """Median wall time of ``function()`` over ``repeats`` runs, after one warm-up run."""
    return median_seconds_each({"function": function}, repeats)["function"]


def machine() -> str:
    """The machine, as the benchmarks' reports name it."""
    import platform

    return f"{platform.machine()}, Python {platform.python_version()}, {len(os.sched_getaffinity(0))} CPUs"


def report(title, headers, rows, json_path=None, data=None) -> None:
    """Print a Markdown table under a title, and write ``data`` as JSON when a path is given."""
    import json

    print(title + "\n")
    print("| " + " | ".join(headers) + " |")
    print("|" + "---|" * len(headers))
    for row in rows:
        print("| " + " | ".join(str(cell) for cell in row) + " |")
    if json_path:
        Path(json_path).write_text(json.dumps(data, indent=2) + "\n")
