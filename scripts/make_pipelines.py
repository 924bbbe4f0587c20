"""Write the example pipelines in pipelines/ with CellProfiler's own API.

Usage (main environment): python scripts/make_pipelines.py

* measure_focus.cppipe: Images -> Metadata -> NamesAndTypes (every image "DNA") -> Groups ->
  MeasureImageFocus (DNA, overlay "FocusOverlay", which the module saves whole as
  <name>_focus.png in the output folder) -> ExportToSpreadsheet (Image.csv in the output
  folder, overwritten without asking).
* focus_qc.cppipe: the same measurement, plus CellProfiler's MeasureImageQuality blur
  features of DNA, FlagImage setting Metadata_OutOfFocus = 1 when
  ImageFocus_DefocusLevel_DNA > 2 or no patch is judged (ImageFocus_JudgedFraction_DNA is 0:
  an image whose focus is unknown never passes as in focus), and Metadata_NoContent = 1 when no patch of the image
  holds structure above its noise (ImageFocus_ContentFraction_DNA is 0: an empty or dark
  field, whose level is NaN, is neither in focus nor out of focus), and Metadata_NotJudged = 1
  when no patch is judged (ImageFocus_JudgedFraction_DNA is 0: no content, or too noisy to
  judge; the level is NaN); exports Image.csv.
"""

import io
import sys
from pathlib import Path

import cellprofiler_core.preferences as preferences

preferences.set_headless()

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "plugins"))

from cellprofiler.modules.exporttospreadsheet import ExportToSpreadsheet  # noqa: E402
from cellprofiler.modules.flagimage import S_IMAGE, FlagImage  # noqa: E402
from cellprofiler.modules.measureimagequality import O_SELECT, MeasureImageQuality  # noqa: E402
from cellprofiler_core.modules.groups import Groups  # noqa: E402
from cellprofiler_core.modules.images import Images  # noqa: E402
from cellprofiler_core.modules.metadata import Metadata  # noqa: E402
from cellprofiler_core.modules.namesandtypes import NamesAndTypes  # noqa: E402
from cellprofiler_core.pipeline import Pipeline  # noqa: E402
from measureimagefocus import MeasureImageFocus  # noqa: E402

from focusnet.contract import (  # noqa: E402
    FEATURE_CONTENT_FRACTION,
    FEATURE_DEFOCUS_LEVEL,
    FEATURE_JUDGED_FRACTION,
    MEASUREMENT_CATEGORY,
)

IMAGE = "DNA"
OVERLAY = "FocusOverlay"
FLAG_LEVEL = 2


def input_modules():
    names_and_types = NamesAndTypes()
    names_and_types.single_image_provider.value = IMAGE  # "All images" are named DNA
    return [Images(), Metadata(), names_and_types, Groups()]


def focus_module(overlay=True):
    module = MeasureImageFocus()
    group = module.image_groups[0]
    group.image_name.value = IMAGE
    group.wants_overlay.value = overlay
    group.overlay_name.value = OVERLAY
    group.wants_overlay_file.value = overlay  # written whole by the module, never cut short as SaveImages can
    return module


def export_image_table():
    module = ExportToSpreadsheet()
    module.wants_prefix.value = False
    module.wants_overwrite_without_warning.value = True
    return module


def blur_quality():
    module = MeasureImageQuality()
    module.images_choice.value = O_SELECT
    group = module.image_groups[0]
    group.image_names.value = IMAGE
    group.check_blur.value = True
    group.check_saturation.value = False
    group.check_intensity.value = False
    group.calculate_threshold.value = False
    return module


#: An image is flagged as without content (or without a judged patch) when that fraction is below this: 0 is
#: the only value below it (a single patch in the largest plate images is above).
NO_CONTENT_BELOW = 1e-6


def flag_image(name, *conditions):
    """A FlagImage module setting Metadata_<name> = 1 when any ImageFocus measurement is out of its range.

    Each condition is ``(feature, minimum, maximum)``, None where that side is not checked.
    """
    module = FlagImage()
    flag = module.flags[0]
    flag.category.value = "Metadata"
    flag.feature_name.value = name
    for index, (feature, minimum, maximum) in enumerate(conditions):
        if index:
            module.add_measurement(flag)
        measurement = flag.measurement_settings[index]
        measurement.source_choice.value = S_IMAGE
        measurement.measurement.value = "_".join((MEASUREMENT_CATEGORY, feature, IMAGE))
        measurement.wants_minimum.value = minimum is not None
        if minimum is not None:
            measurement.minimum_value.value = minimum
        measurement.wants_maximum.value = maximum is not None
        if maximum is not None:
            measurement.maximum_value.value = maximum
    return module


def write(path, modules):
    pipeline = Pipeline()
    for number, module in enumerate(modules, 1):
        module.set_module_num(number)
        pipeline.add_module(module)
    text = io.StringIO()
    pipeline.dump(text, save_image_plane_details=False)
    path.write_text(text.getvalue())
    print(f"wrote {path}")


def main():
    folder = REPO / "pipelines"
    folder.mkdir(exist_ok=True)
    write(folder / "measure_focus.cppipe", input_modules() + [focus_module(), export_image_table()])
    write(folder / "focus_qc.cppipe",
          input_modules() + [focus_module(overlay=False), blur_quality(),
                             flag_image("OutOfFocus", (FEATURE_DEFOCUS_LEVEL, None, FLAG_LEVEL),
                                        (FEATURE_JUDGED_FRACTION, NO_CONTENT_BELOW, None)),
                             flag_image("NoContent", (FEATURE_CONTENT_FRACTION, NO_CONTENT_BELOW, None)),
                             flag_image("NotJudged", (FEATURE_JUDGED_FRACTION, NO_CONTENT_BELOW, None)),
                             export_image_table()])


if __name__ == "__main__":
    main()
