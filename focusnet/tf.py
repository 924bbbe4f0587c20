"""Importing TensorFlow quietly, only where it is used (keeps ``import focusnet`` light)."""

import os

from .errors import ModelError

#: What to do where TensorFlow is missing, said once: the ONNX runtime measures without it.
WITHOUT_TENSORFLOW = (
    "TensorFlow is not installed here: model folders, SavedModel bundles, training and bundle export need it "
    "(pip install 'focusnet[tf]'). To measure without it, use an ONNX model: the shipped one is used when no model "
    "is given, and 'focusnet export --format onnx --model MODEL_DIR --out MODEL.onnx', run where TensorFlow is, "
    "makes one of yours"
)


def import_tensorflow():
    """Import and return TensorFlow with its C++ start-up chatter silenced.

    Users can still choose their own level by setting ``TF_CPP_MIN_LOG_LEVEL``.

    Raises
    ------
    ModelError
        TensorFlow is not installed (the message says what runs without it).
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow
    except ModuleNotFoundError as error:
        if error.name != "tensorflow":
            raise
        raise ModelError(WITHOUT_TENSORFLOW) from None
    return tensorflow
