"""Export of focusnet models: SavedModel bundles for Fiji and CellProfiler (``savedmodel``), ONNX for
onnxruntime (``onnxexport``) and bioimage.io model packages (``bioimageio_package``).

Lives in the repository's ``export/`` folder and is installed as
``focusnet.export`` (no generic top-level ``export`` package).
"""

from .savedmodel import export_bundle

__all__ = ["export_bundle"]
