"""focusnet: absolute focus-quality measurement for fluorescence microscopy.

After Yang et al., "Assessing microscope image focus quality with deep
learning", BMC Bioinformatics 19:77 (2018).

Importing this package is cheap: the names below are loaded on first use,
and TensorFlow only when a classifier first predicts.

>>> import focusnet
>>> prediction = focusnet.predict_image(image)              # doctest: +SKIP
>>> for result in focusnet.predict_paths(["plate1/"]):      # doctest: +SKIP
...     print(result.path, result.prediction or result.reason)
>>> result = focusnet.refocus_image(image)                  # doctest: +SKIP
>>> result.refocused, result.reason, result.after           # doctest: +SKIP
"""

__version__ = "0.1.0"

# name: module that defines it (imported on first access, PEP 562).
_LAZY = {
    "predict_image": "inference",
    "FocusPrediction": "inference",
    "predict_paths": "batch",
    "predict_stack": "stacks",
    "ImageResult": "batch",
    "load_model": "loader",
    "read_image": "images",
    "FocusnetError": "errors",
    "refocus_image": "refocus.restore",
    "RefocusResult": "refocus.restore",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_LAZY))
