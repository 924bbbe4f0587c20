package org.tensorflow.framework;

/** Test stub of a TensorInfo. */
public final class TensorInfo {
    private final String name;

    TensorInfo(String name) {
        this.name = name;
    }

    public String getName() {
        return name;
    }
}
