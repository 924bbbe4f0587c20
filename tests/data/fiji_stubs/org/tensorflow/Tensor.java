package org.tensorflow;

import java.nio.FloatBuffer;

/** Test stub of TensorFlow Java's Tensor: the float data and shape the Fiji script feeds and reads. */
public final class Tensor {
    public final long[] shape;
    public final float[] data;

    public Tensor(long[] shape, float[] data) {
        this.shape = shape;
        this.data = data;
    }

    public static Tensor create(long[] shape, FloatBuffer buffer) {
        float[] data = new float[buffer.remaining()];
        buffer.get(data);
        return new Tensor(shape, data);
    }

    public void copyTo(float[][] destination) {
        int columns = (int) shape[1];
        for (int i = 0; i < destination.length; i++) System.arraycopy(data, i * columns, destination[i], 0, columns);
    }

    public void close() {
    }
}
