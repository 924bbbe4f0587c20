"""
MeasureImageFocus
=================

**MeasureImageFocus** measures, with no threshold to tune, how far each image is from focus
and how certain that is, using focusnet's deep-learning classifier after Yang et al.,
"Assessing microscope image focus quality with deep learning", *BMC Bioinformatics* 19:77
(2018).

Each image is resampled to the model's pixel size when yours differs (a setting), then cut
into 84 x 84 pixel patches (the leftover pixels spread evenly around them). Patches without
structure above their noise (empty background) are marked and left out. For every
patch the network gives the probability of each of 11 defocus levels
(0 = in focus; level L is about 2 L um from focus for a 20x/0.5 NA objective) and a
certainty (1 minus the normalised entropy of that distribution). The whole-image answer is
the certainty-weighted mean of the patch distributions.

The module is meant for raw fluorescence images (e.g. Hoechst/DAPI nuclei) as loaded, not
after illumination correction or rescaling: it recovers raw camera counts from the image's
intensity scale. For floating-point images, whose counts CellProfiler cannot know, a setting
gives the count that 1.0 stands for; without it they are not measured. An image that cannot be
measured gets NaN measurements and a warning naming it; the run goes on.

Installing
^^^^^^^^^^

This file goes into your plugins folder (*File > Preferences > CellProfiler plugins
directory*). It needs the *focusnet* package and onnxruntime (or TensorFlow) in the Python
running CellProfiler; if they are missing, this module says so before the first image, with
the command that installs them. For the packaged Windows and macOS apps (Python 3.8), that
command installs them into the plugins folder from any Python 3 with pip, for example on
Windows: ``py -m pip install --target "%USERPROFILE%\\CellProfiler-plugins" --no-deps
--only-binary=:all: --python-version 3.8 --platform win_amd64 focusnet onnx onnxruntime
protobuf``. For CellProfiler installed with pip: ``python -m pip install "focusnet[onnx]"``.
Then restart CellProfiler. More: focusnet's docs/cellprofiler.md.

|

============ ============ ===============
Supports 2D? Supports 3D? Respects masks?
============ ============ ===============
YES          NO           NO
============ ============ ===============

Measurements made by this module
^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^

For each measured image *X*:

-  *ImageFocus_DefocusLevel_X*: most probable defocus level of the whole image, 0 (in
   focus) to 10. Stored as a number that is NaN when the image cannot be measured.
-  *ImageFocus_MeanCertainty_X*: mean certainty of the patches (0 to 1).
-  *ImageFocus_AggregateCertainty_X*: certainty of the whole-image distribution (0 to 1).
-  *ImageFocus_ProbabilityLevel0_X* ... *ImageFocus_ProbabilityLevel10_X*: the whole-image
   probability of each level.
-  *ImageFocus_PatchCount_X*: number of patches measured (0 when the image is smaller than
   one patch).
-  *ImageFocus_ContentFraction_X*: fraction of the patches with structure above their noise;
   only those are judged. 0 for an empty or dark field (its other measurements are NaN: it is
   neither in focus nor out of focus).
-  *ImageFocus_DefocusUm_X*: distance from focus in micrometres for your objective (settings),
   from the whole-image distribution; *ImageFocus_DefocusUmIsLowerBound_X* is 1 when the blur
   is beyond the last level, so the distance is at least that.
-  *ImageFocus_PixelSizeUm_X*: the pixel size the image was measured at.

Pipelines made with the old CellProfiler-plugins MeasureImageFocus also keep its names:
*ImageFocus_Score_X* (now the defocus level) and *ImageFocus_Certainty_X* (the aggregate
certainty), so the modules after it that use them still run.

References
^^^^^^^^^^

-  Yang SJ, Berndl M, Ando DM, Barch M, Narayanaswamy A, Christiansen E, Hoyer S, Roat C,
   Hung J, Rueden CT, Shankar A, Finkbeiner S, Nelson P (2018) "Assessing microscope image
   focus quality with deep learning." *BMC Bioinformatics* 19:77.
   `(link) <https://doi.org/10.1186/s12859-018-2087-4>`__
"""

import logging
import os
import platform
import sys

import numpy
from cellprofiler_core.constants.measurement import C_FILE_NAME, COLTYPE_FLOAT, COLTYPE_INTEGER, IMAGE
from cellprofiler_core.image import Image
from cellprofiler_core.module import Module
from cellprofiler_core.preferences import DEFAULT_OUTPUT_FOLDER_NAME
from cellprofiler_core.setting import Binary, Divider, HiddenCount, SettingsGroup, ValidationError
from cellprofiler_core.setting.choice import Choice
from cellprofiler_core.setting.do_something import DoSomething, RemoveSettingButton
from cellprofiler_core.setting.subscriber import ImageSubscriber
from cellprofiler_core.setting.text import Directory, Filename, Float, ImageName

#: This file's folder. In the packaged CellProfiler apps, focusnet and onnxruntime are installed here
#: (pip install --target); CellProfiler puts the folder on the path only while it imports plugins,
#: so it is kept there for the imports made later, on first use.
PLUGIN_FOLDER = os.path.dirname(os.path.abspath(__file__))
if PLUGIN_FOLDER not in sys.path:
    sys.path.append(PLUGIN_FOLDER)

try:
    # The measurement names, like every number focusnet's parts share, come from its contract module
    # (standard library only: importing it does not load TensorFlow).
    from focusnet.contract import FEATURE_AGGREGATE_CERTAINTY as F_AGGREGATE_CERTAINTY
    from focusnet.contract import FEATURE_DEFOCUS_LEVEL as F_DEFOCUS_LEVEL
    from focusnet.contract import FEATURE_MEAN_CERTAINTY as F_MEAN_CERTAINTY
    from focusnet.contract import FEATURE_PATCH_COUNT as F_PATCH_COUNT
    from focusnet.contract import FEATURES, PAPER_DOI, SHIPPED_BUNDLE, SHIPPED_ONNX
    from focusnet.contract import LEGACY_FEATURE_CERTAINTY as LEGACY_CERTAINTY
    from focusnet.contract import LEGACY_FEATURE_SCORE as LEGACY_SCORE
    from focusnet.contract import MEASUREMENT_CATEGORY as CATEGORY
    from focusnet.errors import ImageFormatError, ModelError
    from focusnet.optics import Optics
except ImportError as error:
    # Without focusnet the module still loads, so pipelines that use it open; it measures nothing
    # and says, before the first image, how to install what is missing (missing_requirements()).
    FOCUSNET_IMPORT_ERROR = error
    FEATURES = []
    SHIPPED_OPTICS = None
else:
    FOCUSNET_IMPORT_ERROR = None
    # The shipped model's training optics give the optics settings their defaults (a custom bundle's
    # own optics are used while those settings say "No").
    SHIPPED_OPTICS = Optics()

LOGGER = logging.getLogger(__name__)

COLUMN_TYPES = {feature: COLTYPE_FLOAT for feature in FEATURES}
if FOCUSNET_IMPORT_ERROR is None:
    COLUMN_TYPES.update({LEGACY_SCORE: COLTYPE_FLOAT, LEGACY_CERTAINTY: COLTYPE_FLOAT, F_PATCH_COUNT: COLTYPE_INTEGER})

MODEL_SHIPPED = "Shipped with focusnet"
MODEL_CUSTOM = "Custom bundle"
MICROSCOPE_WIDEFIELD = "Widefield"
MICROSCOPE_CONFOCAL = "Confocal (point scanning)"
MICROSCOPE_SPINNING_DISK = "Spinning disk"
#: The microscope setting's choices and focusnet's modality for each.
MODALITY_OF_CHOICE = {MICROSCOPE_WIDEFIELD: "widefield", MICROSCOPE_CONFOCAL: "confocal",
                      MICROSCOPE_SPINNING_DISK: "spinning-disk"}
#: What measuring with the shipped model needs besides CellProfiler's own packages (the packaged
#: apps ship numpy, scipy, scikit-image and matplotlib): focusnet, and onnxruntime with the onnx
#: package (which checks the model) and its protobuf.
APP_PACKAGES = ("focusnet", "onnx", "onnxruntime", "protobuf")


def shipped_optics(name):
    """A default of the optics settings: the shipped model's (NaN, never used, without focusnet)."""
    return getattr(SHIPPED_OPTICS, name, float("nan"))


def install_command():
    """The one command that installs what this module needs into the Python running CellProfiler.

    In the packaged apps (frozen, Python 3.8) that Python has no pip: the packages are installed
    into this plugin's folder from any Python 3 with pip, as wheels for the app's Python and
    platform, and without their dependencies, which the app already holds. Elsewhere, focusnet
    with its onnx extra goes into the running Python.
    """
    if not getattr(sys, "frozen", False):
        return '"%s" -m pip install "focusnet[onnx]"' % sys.executable
    machine = platform.machine().lower()
    if sys.platform == "win32":
        wheel_platform = "win_amd64"
    elif sys.platform == "darwin":
        release = platform.mac_ver()[0].split(".")
        wheel_platform = "macosx_%s_0_%s" % (release[0] if release[0] else "11", machine)
    else:
        wheel_platform = "manylinux2014_%s --platform manylinux_2_28_%s" % (machine, machine)
    return ('python -m pip install --target "%s" --no-deps --only-binary=:all: --python-version %d.%d '
            "--platform %s %s" % (PLUGIN_FOLDER, sys.version_info[0], sys.version_info[1], wheel_platform,
                                  " ".join(APP_PACKAGES)))


def missing_requirements(model=None, module="MeasureImageFocus"):
    """None when this module can measure here, else a message naming what is missing and the fix.

    Parameters
    ----------
    model : str, optional
        The custom model's path; None for the shipped model.
    module : str
        The module that asks (RefocusImage shares this check).
    """
    if FOCUSNET_IMPORT_ERROR is not None:
        what = "the focusnet package, which this Python cannot import (%s)" % FOCUSNET_IMPORT_ERROR
    else:
        from focusnet.loader import missing_runtime

        packages = missing_runtime(model)
        if not packages:
            return None
        if packages == ["tensorflow"]:
            return ("%s: this model bundle runs with TensorFlow, which is not installed here. Choose "
                    "the shipped model or an ONNX model (focusnet export --format onnx), which run with "
                    "onnxruntime, or install TensorFlow: \"%s\" -m pip install tensorflow" % (module, sys.executable))
        what = "onnxruntime to run its model (%s cannot be imported)" % " and ".join(packages)
    if getattr(sys, "frozen", False):
        python = "the packaged app, Python %d.%d) from any Python 3 with pip (on Windows 'py' for 'python'" % (
            sys.version_info[:2])
    else:
        python = "%s, Python %d.%d" % ((sys.executable,) + sys.version_info[:2])
    # focusnet is not on the package index yet: its wheel or a clone of its repository goes in its place.
    unpublished = ("\n(focusnet is not yet published on the package index: write the path of its wheel, or of a "
                   "clone of its repository, where the command says focusnet)" if FOCUSNET_IMPORT_ERROR else "")
    return ("%s needs %s. Install it for CellProfiler (%s) with:\n    %s%s\nthen restart "
            "CellProfiler." % (module, what, python, install_command(), unpublished))


def _interrupt(signum, frame):
    raise KeyboardInterrupt("SIGTERM")


def end_promptly_on_signals():
    """Let SIGINT and SIGTERM end a run at once, the way Ctrl-C ends a plain Python program.

    CellProfiler's Java VM installs its own handlers for both after Python's; on a signal it
    starts its shutdown and, with TensorFlow loaded, a headless run hung until it was killed.
    Setting Python's handlers again takes the signals back (Python still reports the old
    handler, so each is set anew): SIGINT raises KeyboardInterrupt as usual, and so does
    SIGTERM, a cluster scheduler's kill. Only in the main thread.
    """
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return
    for signum, fallback in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _interrupt)):
        current = signal.getsignal(signum)
        signal.signal(signum, current if callable(current) else fallback)


def raw_counts(image, label, float_scale):
    """The image's raw camera counts, from its pixels and CellProfiler's intensity scale.

    Parameters
    ----------
    image : cellprofiler_core.image.Image
    label : str
        Names the image in messages.
    float_scale : Float setting
        The count 1.0 stands for in floating-point images (0: not known).

    Raises
    ------
    FocusnetError
        A colour or 3-D image, one rescaled by another module, a floating-point image without
        the setting that says what 1.0 stands for, or values that are not counts.
    """
    from focusnet.inference import to_counts

    if image.volumetric or image.pixel_data.ndim != 2:
        raise ImageFormatError("%s is %s (shape %s); only single-channel 2-D images can be measured"
                               % (label, "3-D" if image.volumetric else "a colour image", image.pixel_data.shape))
    if image.scale is None:
        raise ImageFormatError("%s has no intensity scale (was it rescaled by another module?); measure the "
                               "image as loaded, so its raw camera counts can be recovered" % label)
    # Block by block into float32 counts: no full-size float64 copy of a large image.
    return to_counts(image.pixel_data, scale=count_scale(image, label, float_scale), name=label)


def count_scale(image, label, float_scale):
    """The count that 1.0 stands for in the image's pixel data: its intensity scale, or the setting for floats.

    Raises
    ------
    ImageFormatError
        A floating-point image (scale 1.0) without the setting.
    """
    scale = float(image.scale)
    if scale == 1.0:  # CellProfiler's scale for floating-point data: the counts are unknown
        if not float_scale.value > 0:
            raise ImageFormatError("%s holds floating-point intensities, whose raw counts CellProfiler cannot "
                                   "know; set '%s'" % (label, float_scale.text))
        scale = float(float_scale.value)
    return scale


class MeasureImageFocus(Module):
    module_name = "MeasureImageFocus"
    category = "Measurement"
    # 1: the CellProfiler-plugins module (one setting: the image). 2: model and images.
    # 3: pixel size and objective. 4: the count 1.0 stands for in floating-point images.
    # 5: the old module's measurement names, kept for pipelines upgraded from it (hidden).
    # 6: the float-scale setting's text had a colon, which pipeline files use between a setting's text
    # and its value: its value is repaired. 7: the microscope and its pinhole.
    # 8: each image's overlay may be saved as a PNG file by the module (whole: renamed into place).
    variable_revision_number = 8
    # CellProfiler 5 shows this in its citation list; the module help's References say the same.
    doi = {} if FOCUSNET_IMPORT_ERROR else {
        "Please cite the following when using MeasureImageFocus:": "https://doi.org/" + PAPER_DOI}

    def create_settings(self):
        #: The overlay files this run wrote (prepare_run starts each run with none).
        self.overlay_files_written = set()
        self.image_groups = []
        self.image_count = HiddenCount(self.image_groups, "Image count")
        self.model_choice = Choice(
            "Focus model",
            [MODEL_SHIPPED, MODEL_CUSTOM],
            doc="""\
The trained focus classifier to use. *%(MODEL_SHIPPED)s* is focusnet's default model
(trained on simulated defocus of in-focus Hoechst-stained nuclei at about 0.65 um per pixel,
the imaging set-up of the paper). Choose *%(MODEL_CUSTOM)s* to use a bundle you exported with
`focusnet export --out NAME.zip` (for example a model trained on your own in-focus images)."""
            % dict(MODEL_SHIPPED=MODEL_SHIPPED, MODEL_CUSTOM=MODEL_CUSTOM),
        )
        self.model_directory = Directory(
            "Folder holding the model bundle",
            doc="""\
*(Used only for a custom bundle)*

The folder that holds the bundle (a `.zip` written by `focusnet export`, the same file Fiji's
Microscope Image Focus Quality plugin loads). Folders relative to the default input or output
folder are rewritten for batch files and clusters.""",
        )

        def get_directory_fn():
            return self.model_directory.get_absolute_path()

        def set_directory_fn(path):
            dir_choice, custom_path = self.model_directory.get_parts_from_path(path)
            self.model_directory.join_parts(dir_choice, custom_path)

        self.model_file = Filename(
            "Model bundle file",
            "focusnet.zip",
            get_directory_fn=get_directory_fn,
            set_directory_fn=set_directory_fn,
            browse_msg="Choose a focusnet bundle",
            exts=[("focusnet bundle (*.zip)", "*.zip"), ("focusnet ONNX model (*.onnx)", "*.onnx"),
                  ("All files (*.*)", "*.*")],
            doc="""\
*(Used only for a custom bundle)*

The bundle's file name (`.zip`), or an ONNX model's (`.onnx`, written by `focusnet export
--format onnx`: it runs with onnxruntime, without TensorFlow). It is checked (intact, of a
known format, holding only the operations a classifier needs) before the first image is
measured.""",
        )
        self.wants_pixel_size = Binary(
            "Do your images have another pixel size than the model's?",
            False,
            doc="""\
The model judges blur at the pixel size it was trained at (the shipped model: 0.65 um in the
sample plane, a 20x objective with 2x2 binning). Select *Yes* and give your pixel size: each
image is then resampled to the model's pixel size before it is measured (patch positions and
the overlay stay in your image's pixels). Pixels much coarser than the model's cannot show
fine blur; for those, and for images that become smaller than one patch, train a model for
your optics (`focusnet train --init`, see focusnet's docs/model.md).""",
        )
        self.pixel_size = Float(
            "Pixel size in the sample plane (um)", shipped_optics("pixel_size_um"), minval=0.001,
            doc="The size of one pixel in the sample plane, in micrometres: the camera pixel divided by the "
                "total magnification (with binning).",
        )
        self.wants_objective = Binary(
            "Is your objective different from the model's?",
            False,
            doc="""\
*DefocusUm* reports each image's distance from focus in micrometres for the objective you
give here: the distance at which your objective blurs as much as the model's level says
(computed with focusnet's PSF). Select *No* for the lens the model was trained for (the
shipped model: NA 0.5, air, 500 nm emission; level 10 is 17.9 um from focus).""",
        )
        self.numerical_aperture = Float("Numerical aperture", shipped_optics("numerical_aperture"), minval=0.01,
                                        maxval=1.7, doc="The numerical aperture of your objective.")
        self.refractive_index = Float(
            "Refractive index of the immersion medium", shipped_optics("refractive_index"), minval=1.0, maxval=2.0,
            doc="1.0 for air, 1.33 for water, 1.515 for oil; it must exceed the numerical aperture.")
        self.wavelength = Float("Emission wavelength (um)", shipped_optics("wavelength_um"), minval=0.2, maxval=2.0,
                                doc="The emission wavelength of the stain in micrometres (e.g. 0.461 for DAPI).")
        self.modality = Choice(
            "Microscope", list(MODALITY_OF_CHOICE), MICROSCOPE_WIDEFIELD,
            doc="""How your images were formed: a camera behind the objective (*%(MICROSCOPE_WIDEFIELD)s*), a
point-scanning confocal (*%(MICROSCOPE_CONFOCAL)s*) or a spinning disk
(*%(MICROSCOPE_SPINNING_DISK)s*). A confocal's PSF is the excitation spot times the detection
PSF seen through the pinhole: it blurs less near focus, so *DefocusUm* converts levels with
that microscope's own axial scale. The level itself does not change.""" % globals())
        self.pinhole = Float(
            "Pinhole diameter (Airy units)", 1.0, minval=0.05, maxval=20.0,
            doc="*(Confocal and spinning disk)* The pinhole's diameter in Airy units (1 is usual).")
        self.float_scale = Float(
            "Count that 1.0 stands for in floating-point images (0 to not measure them)", 0.0, minval=0.0,
            doc="""CellProfiler knows the raw camera counts of integer images (8-, 12-, 16- or 32-bit) from their
type, but not of floating-point images: it hands them over as they are, with a scale of 1.0.
focusnet judges blur against the photon noise of raw counts, so it cannot guess. Give the count
that 1.0 stands for in your floating-point images (65535 for 16-bit data saved as floats in
[0, 1], 4095 for 12-bit, 1 if the floats already are raw counts). With 0 (the default),
floating-point images are not measured: their measurements are NaN and a warning names this
setting.""",
        )
        self.legacy_measurements = Binary(
            "Also write the old module's measurement names", False,
            doc="""*(Hidden: set when a pipeline made with the old CellProfiler-plugins MeasureImageFocus is
loaded.)* That module wrote *ImageFocus_Score_X* (the defocus level) and
*ImageFocus_Certainty_X* (the aggregate certainty). Pipelines upgraded from it keep writing
both, beside the new measurements, so that modules after it that use them (FlagImage,
FilterObjects, ...) still run. New pipelines do not write them.""",
        )
        self.add_image(can_remove=False)
        self.add_image_button = DoSomething("", "Add another image", self.add_image)

    def add_image(self, can_remove=True):
        group = SettingsGroup()
        if can_remove:
            group.append("divider", Divider(line=False))
        group.append(
            "image_name",
            ImageSubscriber(
                "Select an image to measure",
                "None",
                doc="""\
A grayscale image to measure, as loaded (raw intensities, not rescaled or corrected): the
module turns CellProfiler's 0-1 intensities back into camera counts with the image's own
scale, so 12-bit data in 16-bit files are measured correctly. Colour and 3-D images are
not supported.""",
            ),
        )
        group.append(
            "wants_overlay",
            Binary(
                "Make an overlay image?",
                False,
                doc="""\
Select *Yes* to add an image showing the measured image in grey with the border of each
84 x 84 patch coloured by its defocus level (hue: green in focus, through yellow and red, to
magenta at level 10) and certainty (pale = uncertain), as in Figure 2b of the paper. Save it
with the next setting (written whole) or with **SaveImages**.""",
            ),
        )
        group.append(
            "overlay_name",
            ImageName(
                "Name the overlay image",
                "FocusOverlay",
                doc="*(Used only when making an overlay)*\n\nName of the overlay image, for SaveImages "
                "or other modules.",
            ),
        )
        group.append(
            "wants_overlay_file",
            Binary(
                "Save the overlay as a PNG file?",
                False,
                doc="""\
*(Used only when making an overlay)*

Select *Yes* to have this module write each measured image's overlay as
``<image file name>_focus.png``: the overlay image above as an 8-bit PNG (what **SaveImages**
would write), marked as focusnet's so that a later run does not measure it. Each file is
written whole (to a temporary file, then renamed into place), so a run stopped by Ctrl-C, a
scheduler's kill or a full disk never leaves a cut-short overlay, which **SaveImages** can.
The folder is checked before the first image: a folder that is a file or cannot be written
stops the run with a message. A file of that name is replaced only if it is an overlay
focusnet wrote; two images of one name in one run get the second's image number in its name.
An image that cannot be measured gets no overlay file.""",
            ),
        )
        group.append(
            "overlay_folder",
            Directory(
                "Folder for the overlay files",
                value=Directory.static_join_string(DEFAULT_OUTPUT_FOLDER_NAME, ""),
                allow_metadata=False,
                doc="*(Used only when saving overlay files)*\n\nWhere the overlay PNG files go (created if "
                "missing).",
            ),
        )
        if can_remove:
            group.append("remover", RemoveSettingButton("", "Remove this image", self.image_groups, group))
        self.image_groups.append(group)

    def optics_settings(self):
        return [self.wants_pixel_size, self.pixel_size, self.wants_objective, self.numerical_aperture,
                self.refractive_index, self.wavelength, self.modality, self.pinhole]

    def settings(self):
        result = [self.image_count, self.model_choice, self.model_directory, self.model_file]
        result += self.optics_settings() + [self.float_scale, self.legacy_measurements]
        for group in self.image_groups:
            result += [group.image_name, group.wants_overlay, group.overlay_name, group.wants_overlay_file,
                       group.overlay_folder]
        return result

    def visible_settings(self):
        result = [self.model_choice]
        if self.model_choice.value == MODEL_CUSTOM:
            result += [self.model_directory, self.model_file]
        result.append(self.wants_pixel_size)
        if self.wants_pixel_size.value:
            result.append(self.pixel_size)
        result.append(self.wants_objective)
        if self.wants_objective.value:
            result += [self.numerical_aperture, self.refractive_index, self.wavelength, self.modality]
            if self.modality.value != MICROSCOPE_WIDEFIELD:
                result.append(self.pinhole)
        result.append(self.float_scale)
        for group in self.image_groups:
            if hasattr(group, "divider"):
                result.append(group.divider)
            result += [group.image_name, group.wants_overlay]
            if group.wants_overlay.value:
                result += [group.overlay_name, group.wants_overlay_file]
                if group.wants_overlay_file.value:
                    result.append(group.overlay_folder)
            if hasattr(group, "remover"):
                result.append(group.remover)
        result.append(self.add_image_button)
        return result

    def prepare_settings(self, setting_values):
        count = int(setting_values[0])
        del self.image_groups[1:]
        while len(self.image_groups) < count:
            self.add_image(can_remove=True)

    def upgrade_settings(self, setting_values, variable_revision_number, module_name):
        from_old_module = variable_revision_number == 1
        if variable_revision_number == 1:
            # CellProfiler-plugins' MeasureImageFocus: one setting, the image.
            setting_values = ["1", MODEL_SHIPPED, self.model_directory.value, self.model_file.value,
                              setting_values[0], "No", "FocusOverlay"]
            variable_revision_number = 2
        if variable_revision_number == 2:
            # Pixel size and objective, after the model settings: the model's own, as before.
            optics = ["No", str(shipped_optics("pixel_size_um")), "No", str(shipped_optics("numerical_aperture")),
                      str(shipped_optics("refractive_index")), str(shipped_optics("wavelength_um"))]
            setting_values = setting_values[:4] + optics + setting_values[4:]
            variable_revision_number = 3
        if variable_revision_number == 3:
            # The float-image scale, after the optics: 0, floating-point images are not guessed.
            setting_values = setting_values[:10] + ["0.0"] + setting_values[10:]
            variable_revision_number = 4
        if variable_revision_number == 4:
            # After the image count, 3 model settings, 6 optics settings and the float scale.
            position = 1 + 3 + 6 + 1
            setting_values = (setting_values[:position] + ["Yes" if from_old_module else "No"]
                              + setting_values[position:])
            variable_revision_number = 5
            if from_old_module and FOCUSNET_IMPORT_ERROR is None:
                LOGGER.warning(
                    "MeasureImageFocus: this pipeline used the old CellProfiler-plugins module, now focusnet's. Its "
                    "measurements ImageFocus_%s_<image> (now the defocus level, 0 = in focus ... 10) and "
                    "ImageFocus_%s_<image> (the aggregate certainty) are still written for the modules that use "
                    "them; the new ones are ImageFocus_%s_<image>, ImageFocus_%s_<image> and more (see the "
                    "module's help).", LEGACY_SCORE, LEGACY_CERTAINTY, F_DEFOCUS_LEVEL, F_AGGREGATE_CERTAINTY)
        if variable_revision_number == 5:
            # Files saved at revisions 4 and 5 split that setting's text at its colon: the value read
            # is the text's tail, a colon, then the value.
            position = 1 + 3 + 6
            setting_values = list(setting_values)
            setting_values[position] = setting_values[position].rsplit(":", 1)[-1]
            variable_revision_number = 6
        if variable_revision_number == 6:
            # The microscope and its pinhole, after the 6 optics settings: widefield, as before.
            position = 1 + 3 + 6
            setting_values = setting_values[:position] + [MICROSCOPE_WIDEFIELD, "1.0"] + setting_values[position:]
            variable_revision_number = 7
        if variable_revision_number == 7:
            # Each image's 3 settings gain "save the overlay as a file" (No, as before) and its folder.
            head = 1 + 3 + 8 + 2
            images = setting_values[head:]
            folder = Directory.static_join_string(DEFAULT_OUTPUT_FOLDER_NAME, "")
            setting_values = list(setting_values[:head])
            for start in range(0, len(images), 3):
                setting_values += list(images[start:start + 3]) + ["No", folder]
            variable_revision_number = 8
        return setting_values, variable_revision_number

    def volumetric(self):
        return False

    # --- the model ---------------------------------------------------------------------------------

    def model_path(self):
        """Path of the bundle this module uses."""
        if self.model_choice.value == MODEL_SHIPPED:
            # Without TensorFlow (the packaged CellProfiler app), the same model as ONNX.
            from focusnet.loader import tensorflow_installed

            return str(SHIPPED_BUNDLE if tensorflow_installed() else SHIPPED_ONNX)
        return self.custom_model_path()

    def custom_model_path(self):
        """The custom bundle's (or ONNX model's) path; None for the shipped model."""
        if self.model_choice.value == MODEL_SHIPPED:
            return None
        return os.path.join(self.model_directory.get_absolute_path(), self.model_file.value)

    def load_model(self):
        """The bundle or ONNX model, checked and loaded once per process (focusnet caches it).

        TensorFlow (for a bundle) or onnxruntime (for ``.onnx``) is imported here, on first use,
        not when CellProfiler imports plugins.
        """
        from focusnet.loader import load_model

        return load_model(self.model_path())

    def check_model(self):
        """Raise ValidationError naming the setting if the bundle is not usable."""
        setting = self.model_choice if self.model_choice.value == MODEL_SHIPPED else self.model_file
        problem = missing_requirements(self.custom_model_path())
        if problem:
            raise ValidationError(problem, setting)
        path = self.model_path()
        if not os.path.isfile(path):
            raise ValidationError("MeasureImageFocus: model bundle not found: %s" % path, setting)
        try:
            self.load_model()
        except ModelError as error:
            raise ValidationError("MeasureImageFocus: model bundle refused: %s" % error, setting) from None

    def check_objective(self):
        """Raise ValidationError naming the setting if the objective is impossible."""
        if self.wants_objective.value and self.numerical_aperture.value >= self.refractive_index.value:
            raise ValidationError("MeasureImageFocus: the numerical aperture must be smaller than the refractive "
                                  "index of the immersion medium", self.numerical_aperture)

    def validate_module(self, pipeline):
        self.check_model()
        self.check_objective()

    def measuring_options(self, model):
        """Keyword arguments of predict_image for these settings: pixel size and objective."""
        from focusnet.inference import objective_optics

        options = {}
        if self.wants_pixel_size.value:
            options["pixel_size_um"] = float(self.pixel_size.value)
        if self.wants_objective.value:
            options["objective"] = objective_optics(model, self.wavelength.value, self.numerical_aperture.value,
                                                    self.refractive_index.value,
                                                    modality=MODALITY_OF_CHOICE[self.modality.value],
                                                    pinhole_au=float(self.pinhole.value))
        return options

    def prepare_run(self, workspace):
        end_promptly_on_signals()
        # Headless runs never call validate_module: check the bundle before the first image.
        problem = missing_requirements(self.custom_model_path())
        if problem:  # a missing package, not a setting to fix
            LOGGER.error("%s", problem)
            workspace.pipeline.report_prepare_run_error(self, problem)
            return False
        try:
            self.check_model()
            self.check_objective()
        except ValidationError as error:
            LOGGER.error("%s (setting '%s')", error.message, error.get_setting().text)
            workspace.pipeline.report_prepare_run_error(
                self, "%s\nFix the setting '%s'." % (error.message, error.get_setting().text))
            return False
        # After the requirements: the folder check needs focusnet.
        self.overlay_files_written = set()
        for group in self.image_groups:
            if group.wants_overlay.value and group.wants_overlay_file.value:
                problem = self.overlay_folder_problem(group)
                if problem:
                    LOGGER.error("%s", problem)
                    workspace.pipeline.report_prepare_run_error(self, problem)
                    return False
        return True

    def prepare_to_create_batch(self, workspace, fn_alter_path):
        self.model_directory.alter_for_create_batch_files(fn_alter_path)
        for group in self.image_groups:
            group.overlay_folder.alter_for_create_batch_files(fn_alter_path)
        return True

    # --- overlay files -----------------------------------------------------------------------------

    @staticmethod
    def overlay_folder_problem(group):
        """Why overlay files could not be written to the group's folder (None: they can)."""
        from focusnet.errors import FocusnetError
        from focusnet.files import check_output_folder

        try:
            check_output_folder(group.overlay_folder.get_absolute_path(), None)
        except FocusnetError as error:
            return "%s\nFix the setting '%s'." % (error, group.overlay_folder.text)
        return None

    def save_overlay_file(self, workspace, group, rgb, label):
        """Write the overlay PNG whole (temporary file renamed into place); a failure is a warning, not the end."""
        from focusnet.batch import OVERLAY_SUFFIX
        from focusnet.figures import is_focusnet_overlay, write_overlay_png
        from focusnet.files import replacing

        measurements = workspace.measurements
        name = group.image_name.value
        feature = "%s_%s" % (C_FILE_NAME, name)
        number = measurements.image_set_number
        stem = (os.path.splitext(measurements.get_current_image_measurement(feature))[0]
                if measurements.has_feature(IMAGE, feature) else "image%d_%s" % (number, name))
        folder = group.overlay_folder.get_absolute_path()
        path = os.path.join(folder, stem + OVERLAY_SUFFIX)
        if path in self.overlay_files_written:  # another image of this name in this run: never overwrite its overlay
            path = os.path.join(folder, "%s_image%d%s" % (stem, number, OVERLAY_SUFFIX))
        if os.path.exists(path) and not is_focusnet_overlay(path):
            LOGGER.warning("MeasureImageFocus: %s: the overlay would replace %s, which is not an overlay focusnet "
                           "wrote; not written", label, path)
            return
        try:
            os.makedirs(folder, exist_ok=True)
            with replacing(path) as temporary:
                write_overlay_png(temporary, rgb)
        except OSError as error:
            LOGGER.warning("MeasureImageFocus: %s: overlay not written (%s)", label, error)
            return
        self.overlay_files_written.add(path)

    # --- measuring ---------------------------------------------------------------------------------

    def raw_counts(self, image, label):
        """The image's raw camera counts (see :func:`raw_counts`)."""
        return raw_counts(image, label, self.float_scale)

    def setting_hint(self, error):
        """' (setting ...)' naming this module's setting that would fix a focusnet error, or ''."""
        settings = {"pixel_size_um": self.pixel_size, "scale": self.float_scale}
        setting = settings.get(error.setting)
        return " (setting '%s')" % setting.text if setting is not None else ""

    def run(self, workspace):
        from focusnet.errors import FocusnetError
        from focusnet.figures import overlay_rgb, overlay_step
        from focusnet.inference import model_optics, predict_image
        from focusnet.records import image_features, image_record

        measurements = workspace.measurements
        model = self.load_model()
        options = self.measuring_options(model)
        statistics = []
        overlays = []
        for group in self.image_groups:
            name = group.image_name.value
            image = workspace.image_set.get_image(name)
            label = self.describe_image(measurements, name)
            try:
                counts = self.raw_counts(image, label)
                prediction = predict_image(counts, model, scale=1.0, name=label, **options)
            except FocusnetError as error:
                # One image that cannot be measured is a NaN row and a warning, never the end of the run.
                LOGGER.warning("MeasureImageFocus: %s%s; its focus measurements are NaN", error,
                               self.setting_hint(error))
                record = image_record(label, error=error, pixel_size_um=options.get(
                    "pixel_size_um", model_optics(model).pixel_size_um))
                prediction = None
            else:
                for note in prediction.notes:
                    LOGGER.warning("MeasureImageFocus: %s", note)
                record = image_record(label, prediction, pixel_size_um=prediction.pixel_size_um,
                                      pixel_size_source=prediction.pixel_size_source)
            values = image_features(record)
            for feature in FEATURES:
                measurements.add_image_measurement(self.measurement_name(feature, name), values[feature])
            if self.legacy_measurements.value:
                measurements.add_image_measurement(self.measurement_name(LEGACY_SCORE, name), values[F_DEFOCUS_LEVEL])
                measurements.add_image_measurement(self.measurement_name(LEGACY_CERTAINTY, name),
                                                   values[F_AGGREGATE_CERTAINTY])
            statistics.append([name, values[F_DEFOCUS_LEVEL], values[F_AGGREGATE_CERTAINTY],
                               values[F_MEAN_CERTAINTY], values[F_PATCH_COUNT]])
            if group.wants_overlay.value:
                pixels = image.pixel_data
                if prediction is not None:
                    rgb = overlay_rgb(counts, prediction)
                else:  # the image as it is (subsampled like an overlay when large), nothing drawn on it
                    step = overlay_step(pixels.shape)
                    grey = numpy.nan_to_num(numpy.asarray(pixels[::step, ::step], dtype=numpy.float32))
                    grey = numpy.clip(grey if grey.ndim == 2 else grey.reshape(grey.shape[:2] + (-1,))[..., 0], 0, 1)
                    rgb = numpy.repeat(grey[..., None], 3, axis=-1)
                workspace.image_set.add(group.overlay_name.value, Image(rgb, parent_image=image))
                overlays.append((name, rgb))
                if group.wants_overlay_file.value and prediction is not None:
                    self.save_overlay_file(workspace, group, rgb, label)
        if self.show_window:
            workspace.display_data.statistics = statistics
            workspace.display_data.overlays = overlays
            workspace.display_data.images = [
                (g.image_name.value, workspace.image_set.get_image(g.image_name.value).pixel_data)
                for g in self.image_groups]

    @staticmethod
    def describe_image(measurements, name):
        """The image's file name when known (for warnings), else its name in the pipeline."""
        feature = "%s_%s" % (C_FILE_NAME, name)
        if measurements.has_feature(IMAGE, feature):
            return "%s (image %s)" % (measurements.get_current_image_measurement(feature), name)
        return "image %s" % name

    def display(self, workspace, figure):
        from focusnet.figures import level_colours

        statistics = workspace.display_data.statistics
        overlays = dict(workspace.display_data.overlays)
        images = workspace.display_data.images
        figure.set_subplots((len(images), 2))
        for column, (name, pixels) in enumerate(images):
            if name in overlays:
                figure.subplot_imshow_color(column, 0, overlays[name], title="%s: focus by patch" % name)
            else:
                figure.subplot_imshow_grayscale(column, 0, pixels, title=name)
        legend = ", ".join("%d %s" % (level, "#%02x%02x%02x" % tuple(int(255 * c) for c in level_colours(level, 1.0)))
                           for level in (0, 3, 6, 10))
        figure.subplot_table(
            0, 1,
            [[row[0], "NaN" if numpy.isnan(row[1]) else "%d" % row[1], "%.3f" % row[2], "%.3f" % row[3], str(row[4])]
             for row in statistics],
            col_labels=["Image", "Defocus level", "Aggregate certainty", "Mean certainty", "Patches"],
            title="Level 0 = in focus; border hue by level (%s), pale = uncertain" % legend,
        )

    # --- measurement bookkeeping -------------------------------------------------------------------

    @staticmethod
    def measurement_name(feature, image_name):
        return "_".join((CATEGORY, feature, image_name))

    def features(self):
        """The features this module writes for each image (the old module's two as well, when set)."""
        if FOCUSNET_IMPORT_ERROR is not None:  # it measures nothing (it says so before the first image)
            return []
        return list(FEATURES) + ([LEGACY_SCORE, LEGACY_CERTAINTY] if self.legacy_measurements.value else [])

    def get_measurement_columns(self, pipeline):
        return [(IMAGE, self.measurement_name(feature, group.image_name.value), COLUMN_TYPES[feature])
                for group in self.image_groups for feature in self.features()]

    def get_categories(self, pipeline, object_name):
        return [CATEGORY] if object_name == IMAGE and self.features() else []

    def get_measurements(self, pipeline, object_name, category):
        return self.features() if object_name == IMAGE and category == CATEGORY else []

    def get_measurement_images(self, pipeline, object_name, category, measurement):
        if object_name == IMAGE and category == CATEGORY and measurement in self.features():
            return [group.image_name.value for group in self.image_groups]
        return []
