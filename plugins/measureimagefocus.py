"""
MeasureImageFocus
=================

**MeasureImageFocus** measures, with no threshold to tune, how far each image is from focus
and how certain that is, using focusnet's deep-learning classifier after Yang et al.,
"Assessing microscope image focus quality with deep learning", *BMC Bioinformatics* 19:77
(2018).

Each image is cut into 84 x 84 pixel patches (the leftover pixels spread evenly around
them). For every patch the network gives the probability of each of 11 defocus levels
(0 = in focus; level L is about 2 L um from focus for a 20x/0.5 NA objective) and a
certainty (1 minus the normalised entropy of that distribution). The whole-image answer is
the certainty-weighted mean of the patch distributions.

The module is meant for raw fluorescence images (e.g. Hoechst/DAPI nuclei) as loaded, not
after illumination correction or rescaling: it recovers raw camera counts from the image's
intensity scale.

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

References
^^^^^^^^^^

-  Yang SJ, Berndl M, Ando DM, Barch M, Narayanaswamy A, Christiansen E, Hoyer S, Roat C,
   Hung J, Rueden CT, Shankar A, Finkbeiner S, Nelson P (2018) "Assessing microscope image
   focus quality with deep learning." *BMC Bioinformatics* 19:77.
   `(link) <https://doi.org/10.1186/s12859-018-2087-4>`__
"""

import logging
import os

import numpy
from cellprofiler_core.constants.measurement import C_FILE_NAME, COLTYPE_FLOAT, COLTYPE_INTEGER, IMAGE
from cellprofiler_core.image import Image
from cellprofiler_core.module import Module
from cellprofiler_core.setting import Binary, Divider, HiddenCount, SettingsGroup, ValidationError
from cellprofiler_core.setting.choice import Choice
from cellprofiler_core.setting.do_something import DoSomething, RemoveSettingButton
from cellprofiler_core.setting.subscriber import ImageSubscriber
from cellprofiler_core.setting.text import Directory, Filename, ImageName

# The measurement names, like every number focusnet's parts share, come from its contract module
# (standard library only: importing it does not load TensorFlow).
from focusnet.contract import FEATURE_AGGREGATE_CERTAINTY as F_AGGREGATE_CERTAINTY
from focusnet.contract import FEATURE_DEFOCUS_LEVEL as F_DEFOCUS_LEVEL
from focusnet.contract import FEATURE_MEAN_CERTAINTY as F_MEAN_CERTAINTY
from focusnet.contract import FEATURE_PATCH_COUNT as F_PATCH_COUNT
from focusnet.contract import FEATURE_PROBABILITIES as F_PROBABILITIES
from focusnet.contract import FEATURES, PAPER_DOI, SHIPPED_BUNDLE
from focusnet.contract import MEASUREMENT_CATEGORY as CATEGORY
from focusnet.errors import ImageFormatError, ModelError, UnmeasurableImageError

LOGGER = logging.getLogger(__name__)

COLUMN_TYPES = {feature: COLTYPE_FLOAT for feature in FEATURES}
COLUMN_TYPES[F_PATCH_COUNT] = COLTYPE_INTEGER

MODEL_SHIPPED = "Shipped with focusnet"
MODEL_CUSTOM = "Custom bundle"

# Settings before the image groups: count, model choice, directory, file.
FIXED_SETTING_COUNT = 4
SETTINGS_PER_IMAGE = 3


class MeasureImageFocus(Module):
    module_name = "MeasureImageFocus"
    category = "Measurement"
    # 1: the CellProfiler-plugins module (one setting: the image). 2: this module.
    variable_revision_number = 2
    # CellProfiler 5 shows this in its citation list; the module help's References say the same.
    doi = {"Please cite the following when using MeasureImageFocus:": "https://doi.org/" + PAPER_DOI}

    def create_settings(self):
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
            exts=[("focusnet bundle (*.zip)", "*.zip"), ("All files (*.*)", "*.*")],
            doc="""\
*(Used only for a custom bundle)*

The bundle's file name. It is checked (intact, of a known format, holding only the
operations a classifier needs) before the first image is measured.""",
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
with **SaveImages**.""",
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
        if can_remove:
            group.append("remover", RemoveSettingButton("", "Remove this image", self.image_groups, group))
        self.image_groups.append(group)

    def settings(self):
        result = [self.image_count, self.model_choice, self.model_directory, self.model_file]
        for group in self.image_groups:
            result += [group.image_name, group.wants_overlay, group.overlay_name]
        return result

    def visible_settings(self):
        result = [self.model_choice]
        if self.model_choice.value == MODEL_CUSTOM:
            result += [self.model_directory, self.model_file]
        for group in self.image_groups:
            if hasattr(group, "divider"):
                result.append(group.divider)
            result += [group.image_name, group.wants_overlay]
            if group.wants_overlay.value:
                result.append(group.overlay_name)
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
        if variable_revision_number == 1:
            # CellProfiler-plugins' MeasureImageFocus: one setting, the image.
            setting_values = ["1", MODEL_SHIPPED, self.model_directory.value, self.model_file.value,
                              setting_values[0], "No", "FocusOverlay"]
            variable_revision_number = 2
        return setting_values, variable_revision_number

    def volumetric(self):
        return False

    # --- the model ---------------------------------------------------------------------------------

    def model_path(self):
        """Path of the bundle this module uses."""
        if self.model_choice.value == MODEL_SHIPPED:
            return str(SHIPPED_BUNDLE)
        return os.path.join(self.model_directory.get_absolute_path(), self.model_file.value)

    def load_model(self):
        """The bundle, checked and loaded once per process (focusnet caches it).

        TensorFlow is imported here, on first use, not when CellProfiler imports plugins.
        """
        from focusnet.bundle import load_bundle

        return load_bundle(self.model_path())

    def check_model(self):
        """Raise ValidationError naming the setting if the bundle is not usable."""
        setting = self.model_choice if self.model_choice.value == MODEL_SHIPPED else self.model_file
        path = self.model_path()
        if not os.path.isfile(path):
            raise ValidationError("MeasureImageFocus: model bundle not found: %s" % path, setting)
        try:
            self.load_model()
        except ModelError as error:
            raise ValidationError("MeasureImageFocus: model bundle refused: %s" % error, setting) from None

    def validate_module(self, pipeline):
        self.check_model()

    def prepare_run(self, workspace):
        # Headless runs never call validate_module: check the bundle before the first image.
        try:
            self.check_model()
        except ValidationError as error:
            LOGGER.error("%s (setting '%s')", error.message, error.get_setting().text)
            workspace.pipeline.report_prepare_run_error(
                self, "%s\nFix the setting '%s'." % (error.message, error.get_setting().text))
            return False
        return True

    def prepare_to_create_batch(self, workspace, fn_alter_path):
        self.model_directory.alter_for_create_batch_files(fn_alter_path)
        return True

    # --- measuring ---------------------------------------------------------------------------------

    def run(self, workspace):
        from focusnet.figures import overlay_rgb
        from focusnet.inference import predict_image

        measurements = workspace.measurements
        model = self.load_model()
        statistics = []
        overlays = []
        for group in self.image_groups:
            name = group.image_name.value
            image = workspace.image_set.get_image(name)
            label = self.describe_image(measurements, name)
            if image.volumetric or image.pixel_data.ndim != 2:
                raise ImageFormatError(
                    "MeasureImageFocus: %s is %s (shape %s); only single-channel 2-D images can be measured"
                    % (label, "3-D" if image.volumetric else "a colour image", image.pixel_data.shape))
            if image.scale is None:
                raise ImageFormatError(
                    "MeasureImageFocus: %s has no intensity scale (was it rescaled by another module?); "
                    "measure the image as loaded, so its raw camera counts can be recovered" % label)
            try:
                prediction = predict_image(image.pixel_data, model, scale=float(image.scale), name=label)
            except UnmeasurableImageError as error:
                LOGGER.warning("MeasureImageFocus: %s; its focus measurements are NaN", error)
                values = dict.fromkeys(FEATURES, numpy.nan)
                values[F_PATCH_COUNT] = 0
                prediction = None
            else:
                values = {F_DEFOCUS_LEVEL: float(prediction.defocus_level),
                          F_MEAN_CERTAINTY: prediction.mean_certainty,
                          F_AGGREGATE_CERTAINTY: prediction.aggregate_certainty,
                          F_PATCH_COUNT: prediction.num_patches}
                values.update({feature: float(p) for feature, p in zip(F_PROBABILITIES, prediction.distribution)})
            for feature in FEATURES:
                measurements.add_image_measurement(self.measurement_name(feature, name), values[feature])
            statistics.append([name, values[F_DEFOCUS_LEVEL], values[F_AGGREGATE_CERTAINTY],
                               values[F_MEAN_CERTAINTY], values[F_PATCH_COUNT]])
            if group.wants_overlay.value:
                pixels = image.pixel_data
                rgb = overlay_rgb(pixels, prediction) if prediction is not None else numpy.repeat(
                    numpy.clip(pixels, 0, 1)[..., None], 3, axis=-1)
                workspace.image_set.add(group.overlay_name.value, Image(rgb, parent_image=image))
                overlays.append((name, rgb))
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

    def get_measurement_columns(self, pipeline):
        return [(IMAGE, self.measurement_name(feature, group.image_name.value), COLUMN_TYPES[feature])
                for group in self.image_groups for feature in FEATURES]

    def get_categories(self, pipeline, object_name):
        return [CATEGORY] if object_name == IMAGE else []

    def get_measurements(self, pipeline, object_name, category):
        return list(FEATURES) if object_name == IMAGE and category == CATEGORY else []

    def get_measurement_images(self, pipeline, object_name, category, measurement):
        if object_name == IMAGE and category == CATEGORY and measurement in FEATURES:
            return [group.image_name.value for group in self.image_groups]
        return []
