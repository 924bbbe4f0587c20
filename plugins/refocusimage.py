"""
RefocusImage
============

**RefocusImage** restores an out-of-focus fluorescence image with focusnet's refocus model, a
U-Net trained on focusnet's physical defocus simulator, where focusnet's focus classifier says
it can be restored, and measures the focus of the image before and after.

An image is refocused only when the classifier reads it out of focus (level 1 or more), with
content, and within the levels the refocus model restores (its evaluation sets them): defocus
destroys information, and beyond that range the model would have to invent detail. Otherwise
the output image is the input, unchanged, and *Refocus_Refocused_X* is 0. A refocused image
whose level does not go down is kept but flagged (*Refocus_Improved_X* is 0).

Refocused images are for viewing and segmentation (e.g. **IdentifyPrimaryObjects** on nuclei),
not for intensity measurements: measure intensities on the image as loaded.

The input must be a raw fluorescence image as loaded (its intensity scale gives the camera
counts), like **MeasureImageFocus**'s. Installing: as MeasureImageFocus (this file goes into the
same plugins folder, beside measureimagefocus.py, whose checks it shares); it needs focusnet with
onnx and onnxruntime.

|

============ ============ ===============
Supports 2D? Supports 3D? Respects masks?
============ ============ ===============
YES          NO           NO
============ ============ ===============

Measurements made by this module
^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^

For the input image *X*:

-  *Refocus_DefocusLevelBefore_X*, *Refocus_AggregateCertaintyBefore_X*: the classifier's level
   (0 = in focus ... 10) and its certainty for the input (NaN when it cannot be measured).
-  *Refocus_DefocusLevelAfter_X*, *Refocus_AggregateCertaintyAfter_X*: the same for the output
   (NaN when the image was not refocused).
-  *Refocus_Refocused_X*: 1 when refocused, 0 when passed through unchanged.
-  *Refocus_Improved_X*: 1 when the output's level is lower than the input's, else 0.

References
^^^^^^^^^^

-  Yang SJ et al. (2018) "Assessing microscope image focus quality with deep learning."
   *BMC Bioinformatics* 19:77. `(link) <https://doi.org/10.1186/s12859-018-2087-4>`__
"""

import logging
import os
import sys

import numpy
from cellprofiler_core.constants.measurement import COLTYPE_FLOAT, IMAGE
from cellprofiler_core.image import Image
from cellprofiler_core.module import Module
from cellprofiler_core.setting import Binary, ValidationError
from cellprofiler_core.setting.choice import Choice
from cellprofiler_core.setting.subscriber import ImageSubscriber
from cellprofiler_core.setting.text import Directory, Float, ImageName, Text

PLUGIN_FOLDER = os.path.dirname(os.path.abspath(__file__))
if PLUGIN_FOLDER not in sys.path:
    sys.path.append(PLUGIN_FOLDER)

# The checks, the install command and the raw-count rule are MeasureImageFocus's (same folder).
from measureimagefocus import (  # noqa: E402
    FOCUSNET_IMPORT_ERROR,
    MeasureImageFocus,
    count_scale,
    end_promptly_on_signals,
    missing_requirements,
    raw_counts,
)

LOGGER = logging.getLogger(__name__)
CATEGORY = "Refocus"
FEATURES = ["DefocusLevelBefore", "AggregateCertaintyBefore", "DefocusLevelAfter", "AggregateCertaintyAfter",
            "Refocused", "Improved"]
MODEL_SHIPPED = "Shipped with focusnet"
MODEL_CUSTOM = "Custom refocus model"


class RefocusImage(Module):
    module_name = "RefocusImage"
    category = "Image Processing"
    variable_revision_number = 1
    doi = MeasureImageFocus.doi

    def create_settings(self):
        self.input_image = ImageSubscriber(
            "Select the input image", "None",
            doc="A grayscale fluorescence image as loaded (raw intensities, not rescaled or corrected).")
        self.output_image = ImageName(
            "Name the output image", "Refocused",
            doc="The refocused image, or the input unchanged where it is not refocused (see the module's help).")
        self.model_choice = Choice(
            "Refocus model", [MODEL_SHIPPED, MODEL_CUSTOM],
            doc="*%s* is focusnet's refocus model (trained for 0.65 um pixels, 20x/0.5 NA). Choose *%s* for one you "
                "trained or fine-tuned (`focusnet train-refocus`): a model folder or an exported `.onnx` file."
                % (MODEL_SHIPPED, MODEL_CUSTOM))
        self.model_directory = Directory(
            "Folder holding the refocus model", doc="*(Used only for a custom model)* The folder that holds it.")
        self.model_name = Text(
            "Refocus model folder or file name", "refocus",
            doc="*(Used only for a custom model)* The model folder's name, or NAME.onnx, inside that folder.")
        self.wants_pixel_size = Binary(
            "Set the pixel size?", False,
            doc="Select *Yes* to give the pixel size of your images; otherwise the model's is assumed. Images are "
                "refocused at the model's pixel size and the correction is brought back to yours.")
        self.pixel_size = Float("Pixel size (um)", 0.65, minval=1e-6,
                                doc="*(Used only when setting the pixel size)* In the sample plane.")
        self.float_scale = Float(
            "Count that 1.0 stands for in floating-point images", 0.0, minval=0.0,
            doc="For floating-point images only: the raw count that 1.0 stands for (e.g. 65535). 0: such images "
                "are passed through unchanged, with a warning.")

    def settings(self):
        return [self.input_image, self.output_image, self.model_choice, self.model_directory, self.model_name,
                self.wants_pixel_size, self.pixel_size, self.float_scale]

    def visible_settings(self):
        result = [self.input_image, self.output_image, self.model_choice]
        if self.model_choice.value == MODEL_CUSTOM:
            result += [self.model_directory, self.model_name]
        result.append(self.wants_pixel_size)
        if self.wants_pixel_size.value:
            result.append(self.pixel_size)
        return result + [self.float_scale]

    def upgrade_settings(self, setting_values, variable_revision_number, module_name):
        return setting_values, variable_revision_number

    def volumetric(self):
        return False

    def model_path(self):
        """The custom refocus model's path; None for the shipped one."""
        if self.model_choice.value == MODEL_SHIPPED:
            return None
        return os.path.join(self.model_directory.get_absolute_path(), self.model_name.value)

    def check_model(self):
        """Raise ValidationError naming the setting if the refocus model or its runtime is not usable."""
        from focusnet.contract import SHIPPED_ONNX

        setting = self.model_choice if self.model_choice.value == MODEL_SHIPPED else self.model_name
        problem = missing_requirements(str(SHIPPED_ONNX), module="RefocusImage")
        if problem:
            raise ValidationError(problem, setting)
        from focusnet.errors import ModelError
        from focusnet.refocus.model import load_refocus_model

        try:
            load_refocus_model(self.model_path())
        except ModelError as error:
            raise ValidationError("RefocusImage: refocus model refused: %s" % error, setting) from None

    def validate_module(self, pipeline):
        self.check_model()

    def prepare_run(self, workspace):
        end_promptly_on_signals()
        if FOCUSNET_IMPORT_ERROR is not None:
            problem = missing_requirements(module="RefocusImage")
            LOGGER.error("%s", problem)
            workspace.pipeline.report_prepare_run_error(self, problem)
            return False
        try:
            self.check_model()
        except ValidationError as error:  # headless runs never call validate_module
            LOGGER.error("%s (setting '%s')", error.message, error.get_setting().text)
            workspace.pipeline.report_prepare_run_error(
                self, "%s\nFix the setting '%s'." % (error.message, error.get_setting().text))
            return False
        return True

    def prepare_to_create_batch(self, workspace, fn_alter_path):
        self.model_directory.alter_for_create_batch_files(fn_alter_path)
        return True

    def run(self, workspace):
        from focusnet.contract import SHIPPED_ONNX
        from focusnet.errors import FocusnetError
        from focusnet.loader import load_model, tensorflow_installed
        from focusnet.refocus.model import load_refocus_model
        from focusnet.refocus.restore import refocus_image

        name = self.input_image.value
        image = workspace.image_set.get_image(name)
        label = MeasureImageFocus.describe_image(workspace.measurements, name)
        classifier = load_model(None if tensorflow_installed() else str(SHIPPED_ONNX))
        pixel_size = float(self.pixel_size.value) if self.wants_pixel_size.value else None
        values = dict.fromkeys(FEATURES, float("nan"))
        output = image.pixel_data
        try:
            counts = raw_counts(image, label, self.float_scale)
            result = refocus_image(counts, load_refocus_model(self.model_path()), classifier, scale=1.0, name=label,
                                   pixel_size_um=pixel_size, pixel_size_source="given" if pixel_size else None)
        except FocusnetError as error:
            LOGGER.warning("RefocusImage: %s; passed through unchanged, its measurements are NaN", error)
        else:
            values["Refocused"] = float(result.refocused)
            for when, prediction in (("Before", result.before), ("After", result.after)):
                if prediction is not None:
                    values["DefocusLevel" + when] = float(prediction.defocus_level)
                    values["AggregateCertainty" + when] = float(prediction.aggregate_certainty)
            if result.refocused:
                values["Improved"] = float(result.improved)
                # Back to CellProfiler's 0-1 intensities with the input's own scale.
                output = (result.image / count_scale(image, label, self.float_scale)).astype(numpy.float32)
                if result.reason:
                    LOGGER.warning("RefocusImage: %s: %s", label, result.reason)
            else:
                LOGGER.info("RefocusImage: %s not refocused: %s", label, result.reason)
        workspace.image_set.add(self.output_image.value, Image(output, parent_image=image, scale=image.scale))
        for feature in FEATURES:
            workspace.measurements.add_image_measurement(self.measurement_name(feature), values[feature])
        if self.show_window:
            workspace.display_data.images = (image.pixel_data, output)
            workspace.display_data.values = values

    def display(self, workspace, figure):
        before, after = workspace.display_data.images
        values = workspace.display_data.values
        figure.set_subplots((2, 1))
        figure.subplot_imshow_grayscale(0, 0, before, title="Input: level %s" % values["DefocusLevelBefore"])
        figure.subplot_imshow_grayscale(1, 0, after, title="Output: level %s" % values["DefocusLevelAfter"],
                                        sharexy=figure.subplot(0, 0))

    def measurement_name(self, feature):
        return "_".join((CATEGORY, feature, self.input_image.value))

    def get_measurement_columns(self, pipeline):
        return [(IMAGE, self.measurement_name(feature), COLTYPE_FLOAT) for feature in FEATURES]

    def get_categories(self, pipeline, object_name):
        return [CATEGORY] if object_name == IMAGE else []

    def get_measurements(self, pipeline, object_name, category):
        return list(FEATURES) if object_name == IMAGE and category == CATEGORY else []

    def get_measurement_images(self, pipeline, object_name, category, measurement):
        if object_name == IMAGE and category == CATEGORY and measurement in FEATURES:
            return [self.input_image.value]
        return []
