package org.tensorflow.framework;

/** Test stub of a SignatureDef. */
public final class SignatureDef {
    public TensorInfo getInputsOrThrow(String key) {
        return new TensorInfo(key + ":0");
    }

    public TensorInfo getOutputsOrThrow(String key) {
        return new TensorInfo(key + ":0");
    }
}
