"""The errors focusnet raises for its users, all under one :class:`FocusnetError`.

A caller that runs a batch (the CLI, the CellProfiler module) catches
:class:`FocusnetError`; anything else escaping is a bug. Each class also
derives from the built-in exception it refines (``ValueError``,
``FileNotFoundError``), so code that caught those keeps working.
"""

from __future__ import annotations


class FocusnetError(Exception):
    """Base of every error a focusnet user should see as a message, not a traceback.

    The message says what is wrong and, in words, what would fix it; it names
    no command-line flag, since CellProfiler and other front ends show it too.

    Parameters
    ----------
    message : str
    setting : str, optional
        The library parameter that would fix it (e.g. ``"z_step_um"``, see
        :data:`SETTINGS`): each front end names its own control for it, the
        command line its flag and the CellProfiler module its setting.
    """

    #: A short reason a batch's table gives for an image this error stopped (its ``reason`` column).
    reason = "error"

    def __init__(self, *args, setting: str | None = None):
        super().__init__(*args)
        if setting is not None and setting not in SETTINGS:
            raise ValueError(f"unknown setting {setting!r}")  # a typo here would hide the hint
        self.setting = setting


#: The settings an error may name (``FocusnetError.setting``), and what each one is, in words.
SETTINGS = {
    "pixel_size_um": "the pixel size",
    "z_step_um": "the plane spacing",
    "axes": "the stack's axes",
    "channel": "the channel",
    "scale": "the count 1.0 stands for",
    "csv": "the image table",
    "patches_csv": "the patch table",
    "summary_csv": "the stack table",
    "overlay_dir": "the overlay folder",
    "best_dir": "the folder for best planes",
    "plots": "the folder for plots",
    "resume": "resuming the run",
    "workers": "the number of workers",
    "scheduler": "the scheduler",
    "pattern": "the file-name pattern",
    "validation_images": "the validation images",
    "out": "the output path",
    "overwrite": "replacing the output",
    "architecture": "the architecture",
    "out_dir": "the output folder",
    "montage_dir": "the montage folder",
    "not_refocused": "what happens to images that are not refocused",
    "init_model": "the model to fine-tune",
    "best_plane": "the reference plane",
    "export_format": "the export format",
    "json": "the JSON report",
    "sharpest_out": "the sharpest plane's file",
}


class InvalidParameterError(FocusnetError, ValueError):
    """A parameter outside its valid range (optics, camera, training settings, scale)."""


class InputNotFoundError(FocusnetError, FileNotFoundError):
    """An input path (image, folder, glob) that does not exist or matches nothing."""

    reason = "not found"


class ImageFormatError(FocusnetError, ValueError):
    """An image that is not a single-channel 2-D numeric image of raw counts."""

    reason = "image format"


class UnmeasurableImageError(FocusnetError, ValueError):
    """An image that holds no measurable content (too small, constant, or without structure).

    Batch callers record NaN measurements and a warning naming the image.

    Attributes
    ----------
    num_patches : int
        Patches the image was cut into (0 when none fits).
    content_fraction : float
        Fraction of those with content: 0 for an image without content, NaN
        when none was judged.
    """

    reason = "unmeasurable"

    def __init__(self, message, num_patches: int = 0, content_fraction: float = float("nan"), setting=None):
        super().__init__(message, setting=setting)
        self.num_patches = num_patches
        self.content_fraction = content_fraction
        #: Fraction of the patches judged (with content and not too noisy): 0 when none was, NaN when not cut.
        self.judged_fraction = 0.0 if num_patches else float("nan")


class NoContentError(UnmeasurableImageError):
    """An image none of whose patches holds structure above its noise: an empty or dark field."""

    reason = "no content"

    def __init__(self, message, num_patches: int = 0):
        super().__init__(message, num_patches=num_patches, content_fraction=0.0)


class TooNoisyError(UnmeasurableImageError):
    """An image whose patches with content are all too noisy to judge (:data:`focusnet.content.TOO_NOISY_BELOW`)."""

    reason = "too noisy"


class JournalError(InvalidParameterError):
    """A batch's journal that this run may not start or continue (its message says what to do instead)."""


class ModelError(FocusnetError, ValueError):
    """A model folder that is missing, damaged or of an unknown format."""


class BundleError(ModelError):
    """A bundle that is missing, damaged, tampered with or not allowed to run."""


class TrainingError(FocusnetError, ValueError):
    """A training run that cannot start or continue as asked."""


class ExportError(FocusnetError, ValueError):
    """An export that cannot be written as asked."""
