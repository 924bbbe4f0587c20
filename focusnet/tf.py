"""Importing TensorFlow quietly, only where it is used (keeps ``import focusnet`` light)."""

import os


def import_tensorflow():
    """Import and return TensorFlow with its C++ start-up chatter silenced.

    Users can still choose their own level by setting ``TF_CPP_MIN_LOG_LEVEL``.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tensorflow

    return tensorflow
