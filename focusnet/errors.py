"""The errors focusnet raises for its users, all under one :class:`FocusnetError`.

A caller that runs a batch (the CLI, the CellProfiler module) catches
:class:`FocusnetError`; anything else escaping is a bug. Each class also
derives from the built-in exception it refines (``ValueError``,
``FileNotFoundError``), so code that caught those keeps working.
"""


class FocusnetError(Exception):
    """Base of every error a focusnet user should see as a message, not a traceback."""


class InvalidParameterError(FocusnetError, ValueError):
    """A parameter outside its valid range (optics, camera, training settings, scale)."""


class InputNotFoundError(FocusnetError, FileNotFoundError):
    """An input path (image, folder, glob) that does not exist or matches nothing."""


class ImageFormatError(FocusnetError, ValueError):
    """An image that is not a single-channel 2-D numeric image of raw counts."""


class UnmeasurableImageError(FocusnetError, ValueError):
    """An image that holds no measurable content (too small, or constant).

    Batch callers record NaN measurements and a warning naming the image.
    """


class ModelError(FocusnetError, ValueError):
    """A model folder that is missing, damaged or of an unknown format."""


class BundleError(ModelError):
    """A bundle that is missing, damaged, tampered with or not allowed to run."""


class TrainingError(FocusnetError, ValueError):
    """A training run that cannot start or continue as asked."""


class ExportError(FocusnetError, ValueError):
    """An export that cannot be written as asked."""
