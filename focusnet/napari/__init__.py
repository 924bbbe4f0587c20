"""focusnet in napari: the "Measure focus" dock widget and sample data (npe2 manifest ``napari.yaml``).

Install with ``pip install "focusnet[napari]"``; napari finds the plugin through the
``napari.manifest`` entry point. Nothing here is imported by ``import focusnet``.
"""
