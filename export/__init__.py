"""Export of focusnet models as SavedModel bundles for Fiji and CellProfiler.

Lives in the repository's ``export/`` folder and is installed as
``focusnet.export`` (no generic top-level ``export`` package).
"""

from .savedmodel import export_bundle

__all__ = ["export_bundle"]
