"""The numbers and names every part of focusnet must agree on, defined once.

The library, the exporter, the CellProfiler plugin, the Fiji script's
documentation and the tests import them from here. This module imports
nothing but the standard library, so anything (a CellProfiler plugin, a test
helper) can read it cheaply.
"""

from __future__ import annotations

from pathlib import Path

# --- the classifier ---------------------------------------------------------------------------

#: Side of the square patches the classifier judges, in pixels.
PATCH_SIZE = 84
#: Defocus levels 0 (in focus) to NUM_LEVELS - 1.
NUM_LEVELS = 11
LEVELS = tuple(range(NUM_LEVELS))
#: Network input is raw counts divided by this (Fiji feeds 16-bit pixels / 65535).
INPUT_SCALE = 65535.0
#: What the network's first step does to each patch (recorded in every model's config).
PREPROCESSING = "log(1 + counts - patch minimum) - patch mean"

# --- model folders (focusnet.model) -----------------------------------------------------------

MODEL_FORMAT = "focusnet-model"
#: Version 2 keeps the run's settings once, in config["training"]["settings"] (version 1 spread
#: them over config["training"] and checkpoint/settings.json). Version 3 records the simulator's
#: defocus phase (config["simulator"]["optics"]["defocus_phase"]); earlier models were all
#: simulated with the paraxial one.
MODEL_FORMAT_VERSION = 3
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "weights.npz"
CARD_FILE = "README.md"
#: The evaluation figures the model card is rendered from.
EVALUATION_FILE = "evaluation.json"
CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_STATE_FILE = "state.npz"
TRAINING_LOG_FILE = "training_log.csv"
TRAINING_PLOT_FILE = "training.png"

# --- bundles: the SavedModel that Fiji, CellProfiler and `focusnet predict --model` load ------

BUNDLE_FORMAT = "focusnet-bundle"
BUNDLE_FORMAT_VERSION = 1
MANIFEST_FILE = "focusnet.json"
SAVED_MODEL_FILE = "saved_model.pb"
VARIABLES_DIR = "variables"
#: The bundle's model for the ImageJ plugin's plain-Java forward pass (java.util.Properties text, see
#: export/imagej.py); its SHA-256 is in the manifest like every other file's.
IMAGEJ_MODEL_FILE = "imagej-model.properties"
IMAGEJ_MODEL_FORMAT = "focusnet-imagej-model"
IMAGEJ_MODEL_FORMAT_VERSION = 1
#: The MetaGraph tag Fiji's "Microscope Image Focus Quality" plugin loads.
BUNDLE_TAG = "inference"
BUNDLE_SIGNATURE = "serving_default"
BUNDLE_INPUT_KEY = "input"
BUNDLE_PROBABILITIES_KEY = "probabilities"
BUNDLE_PATCHES_KEY = "patches"
BUNDLE_OUTPUT_KEYS = (BUNDLE_PROBABILITIES_KEY, BUNDLE_PATCHES_KEY)
#: How the manifest describes the signature's tensors.
BUNDLE_INPUT_SPEC = {"key": BUNDLE_INPUT_KEY, "dtype": "float32", "shape": [f"rows*{PATCH_SIZE}", f"cols*{PATCH_SIZE}"],
                     "values": f"raw counts / {INPUT_SCALE:g}"}
BUNDLE_OUTPUT_SPECS = {BUNDLE_PROBABILITIES_KEY: ["N", NUM_LEVELS],
                       BUNDLE_PATCHES_KEY: ["N", PATCH_SIZE, PATCH_SIZE, 1]}

# --- ONNX models: the patch classifier for onnxruntime (focusnet.onnxmodel) --------------------

ONNX_SUFFIX = ".onnx"
ONNX_FORMAT = "focusnet-onnx"
#: Version 2: one SHA-256 covers the graph and the config in the manifest (version 1 hashed the graph alone).
ONNX_FORMAT_VERSION = 2
#: The opset the exporter writes (onnxruntime 1.14 and later run it).
ONNX_OPSET = 18
ONNX_INPUT = "patches"
ONNX_OUTPUT = "probabilities"
#: The ``metadata_props`` key of focusnet's manifest in an ONNX model.
ONNX_MANIFEST_KEY = "focusnet"

# --- shipped models ---------------------------------------------------------------------------

_MODELS = Path(__file__).resolve().parent / "models"
#: The model folder shipped inside the package, used when no model is given.
SHIPPED_MODEL_DIR = _MODELS / "default"
#: The shipped model exported as a bundle: the CellProfiler plugin's default.
SHIPPED_BUNDLE = _MODELS / "default-bundle.zip"
#: The shipped model exported as ONNX: the default where TensorFlow is not installed.
SHIPPED_ONNX = _MODELS / "default.onnx"

# --- results: `focusnet predict`'s CSV files --------------------------------------------------

PROBABILITY_COLUMNS = [f"prob_{level}" for level in LEVELS]
#: Where the pixel size came from: the caller, the file, or the model's own (assumed).
PIXEL_SIZE_SOURCES = ("given", "file", "assumed")
#: ``judged_fraction``: patches with content and not too noisy; ``reason``: why an image has no answer ('' when
#: it has one; e.g. "no content", "too noisy").
IMAGE_COLUMNS = ["image", "defocus_level", "mean_certainty", "aggregate_certainty"] + PROBABILITY_COLUMNS + [
    "patches", "content_fraction", "defocus_um", "defocus_um_lower_bound", "pixel_size_um", "pixel_size_source",
    "judged_fraction", "reason"]
PATCH_COLUMNS = ["image", "row", "col", "y", "x", "defocus_level", "certainty"] + PROBABILITY_COLUMNS + [
    "content", "defocus_um", "size", "defocus_um_lower_bound", "structure_to_noise", "judged"]

# --- results: `focusnet stack`'s CSV files --------------------------------------------------------

#: One row per plane of each stack (and time point), judged by one channel.
STACK_PLANE_COLUMNS = ["stack", "time", "channel", "plane", "z_um", "defocus_level", "expected_level", "defocus_um",
                       "defocus_um_lower_bound", "aggregate_certainty", "mean_certainty", "content_fraction",
                       "best", "judged_fraction", "reason"]
#: One row per stack and time point: its best plane.
STACK_COLUMNS = ["stack", "time", "channel", "planes", "measured_planes", "best_plane", "best_plane_fit",
                 "best_plane_z_um", "best_z_um", "best_defocus_level", "best_defocus_um", "best_plane_certainty",
                 "z_step_um", "pixel_size_um", "pixel_size_source"]

# --- results: `focusnet plate`'s wells.csv ---------------------------------------------------------

#: One row per well: its sites, and the worst and mean level of those measured.
WELL_COLUMNS = ["well", "row", "column", "sites", "measured_sites", "worst_level", "mean_level",
                "mean_aggregate_certainty"]

# --- results: the CellProfiler module's measurements ------------------------------------------

MEASUREMENT_CATEGORY = "ImageFocus"
FEATURE_DEFOCUS_LEVEL = "DefocusLevel"
FEATURE_MEAN_CERTAINTY = "MeanCertainty"
FEATURE_AGGREGATE_CERTAINTY = "AggregateCertainty"
FEATURE_PATCH_COUNT = "PatchCount"
FEATURE_PROBABILITIES = [f"ProbabilityLevel{level}" for level in LEVELS]
FEATURE_CONTENT_FRACTION = "ContentFraction"
FEATURE_DEFOCUS_UM = "DefocusUm"
FEATURE_DEFOCUS_UM_LOWER_BOUND = "DefocusUmIsLowerBound"
FEATURE_PIXEL_SIZE_UM = "PixelSizeUm"
FEATURE_JUDGED_FRACTION = "JudgedFraction"
#: The measurements of the old CellProfiler-plugins module, still written for pipelines upgraded from it
#: (Score: the defocus level; Certainty: the aggregate certainty).
LEGACY_FEATURE_SCORE = "Score"
LEGACY_FEATURE_CERTAINTY = "Certainty"
#: The image column each measurement is taken from (see focusnet.records.image_features).
FEATURE_OF_IMAGE_COLUMN = {
    "defocus_level": FEATURE_DEFOCUS_LEVEL, "mean_certainty": FEATURE_MEAN_CERTAINTY,
    "aggregate_certainty": FEATURE_AGGREGATE_CERTAINTY, **dict(zip(PROBABILITY_COLUMNS, FEATURE_PROBABILITIES)),
    "patches": FEATURE_PATCH_COUNT, "content_fraction": FEATURE_CONTENT_FRACTION, "defocus_um": FEATURE_DEFOCUS_UM,
    "defocus_um_lower_bound": FEATURE_DEFOCUS_UM_LOWER_BOUND, "pixel_size_um": FEATURE_PIXEL_SIZE_UM,
    "judged_fraction": FEATURE_JUDGED_FRACTION}
FEATURES = list(FEATURE_OF_IMAGE_COLUMN.values())

# --- citation ---------------------------------------------------------------------------------

PAPER_DOI = "10.1186/s12859-018-2087-4"
PAPER_CITATION = ("Yang SJ, Berndl M, Ando DM, Barch M, Narayanaswamy A, Christiansen E, Hoyer S, Roat C, Hung J, "
                  "Rueden CT, Shankar A, Finkbeiner S, Nelson P (2018) \"Assessing microscope image focus quality "
                  "with deep learning.\" BMC Bioinformatics 19:77")
