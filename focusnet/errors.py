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

    def __init__(self, message, num_patches: int = 0, content_fraction: float = float("nan")):
        super().__init__(message)
        self.num_patches = num_patches
        self.content_fraction = content_fraction


class NoContentError(UnmeasurableImageError):
    """An image none of whose patches holds structure above its noise: an empty or dark field."""

    def __init__(self, message, num_patches: int = 0):
        super().__init__(message, num_patches=num_patches, content_fraction=0.0)


class ModelError(FocusnetError, ValueError):
    """A model folder that is missing, damaged or of an unknown format."""


class BundleError(ModelError):
    """A bundle that is missing, damaged, tampered with or not allowed to run."""


class TrainingError(FocusnetError, ValueError):
    """A training run that cannot start or continue as asked."""


class ExportError(FocusnetError, ValueError):
    """An export that cannot be written as asked."""
