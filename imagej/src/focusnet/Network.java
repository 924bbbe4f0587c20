package focusnet;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Base64;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

/**
 * The patch classifier's forward pass in plain Java: no TensorFlow, no native library.
 *
 * <p>Op for op what focusnet.network.inference_graph computes: log(1 + counts - patch minimum) minus its
 * mean, then each convolution (TensorFlow's SAME padding), bias and ReLU, the mean over positions and the
 * dense layer, softmax. The weights come from the bundle's {@code imagej-model.properties}, written by
 * {@code focusnet export} from the model folder's folded weights (float32, kernels height x width x in x
 * out).
 */
public final class Network {
    /** One convolution: kernel (k x k x in x out, out fastest), bias, stride. */
    private static final class Conv {
        final int kernel, in, out, stride;
        final float[] weights, bias;

        Conv(int kernel, int in, int out, int stride, float[] weights, float[] bias) {
            this.kernel = kernel;
            this.in = in;
            this.out = out;
            this.stride = stride;
            this.weights = weights;
            this.bias = bias;
        }
    }

    private final List<Conv> convs = new ArrayList<>();
    private final float[] denseWeights, denseBias;
    private final int features, levels, patch;
    private final double inputScale;

    /**
     * The network described by a model's properties.
     *
     * @throws IllegalArgumentException when an entry is missing or has the wrong size (the message names it)
     */
    public Network(Properties model) {
        patch = integer(model, "patch_size");
        levels = integer(model, "num_levels");
        inputScale = number(model, "input_scale");
        String head = text(model, "head");
        if (!head.equals("global_average"))
            throw new IllegalArgumentException("head '" + head + "' is not supported by the ImageJ engine");
        int channels = 1;
        for (int index = 0; model.getProperty("conv" + index + ".kernel") != null; index++) {
            String name = "conv" + index;
            int[] shape = shape(model, name + ".kernel");
            if (shape.length != 4 || shape[0] != shape[1] || shape[2] != channels)
                throw new IllegalArgumentException(name + ".kernel has shape " + java.util.Arrays.toString(shape));
            int stride = integer(model, name + ".stride");
            float[] weights = floats(model, name + ".kernel", shape[0] * shape[1] * shape[2] * shape[3]);
            float[] bias = floats(model, name + ".bias", shape[3]);
            convs.add(new Conv(shape[0], shape[2], shape[3], stride, weights, bias));
            channels = shape[3];
        }
        if (convs.isEmpty()) throw new IllegalArgumentException("no convolutions (conv0.kernel) in the model");
        features = channels;
        denseWeights = floats(model, "levels.kernel", features * levels);
        denseBias = floats(model, "levels.bias", levels);
    }

    public int patchSize() {
        return patch;
    }

    public int levels() {
        return levels;
    }

    /** At most this many patches computed together: the innermost loops run over them (the JIT vectorises them). */
    static final int BATCH = 64;

    /**
     * Level probabilities of patches of raw counts, each patch row-major (patch x patch).
     *
     * @param patches raw counts (not divided by the input scale)
     * @param threads how many batches of patches are computed side by side
     */
    public double[][] predict(final float[][] patches, int threads) throws Exception {
        final double[][] result = new double[patches.length][];
        // Batches as long as allowed, but at least one per thread: a small image still uses every CPU.
        final int batch = Math.max(1, Math.min(BATCH, (patches.length + threads - 1) / Math.max(threads, 1)));
        List<Integer> starts = new ArrayList<>();
        for (int start = 0; start < patches.length; start += batch) starts.add(start);
        if (threads <= 1 || starts.size() < 2) {
            for (int start : starts) predictBatch(patches, start, Math.min(batch, patches.length - start), result);
            return result;
        }
        ExecutorService pool = Executors.newFixedThreadPool(Math.min(threads, starts.size()));
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (final int start : starts)
                futures.add(pool.submit(() -> predictBatch(patches, start, Math.min(batch, patches.length - start),
                        result)));
            for (Future<?> future : futures) future.get();
        } finally {
            pool.shutdown();
        }
        return result;
    }

    /** Level probabilities of one patch of raw counts (row-major, patch x patch). */
    public double[] predict(float[] counts) {
        double[][] result = new double[1][];
        predictBatch(new float[][] {counts}, 0, 1, result);
        return result[0];
    }

    /**
     * Patches {@code from} .. {@code from + count - 1} into {@code result}. Each activation (position, channel)
     * is an array over the batch: every multiply-add of a convolution is then a loop over whole arrays from
     * index 0, which the JIT vectorises (it does not where one array is read and written at two offsets).
     */
    private void predictBatch(float[][] patches, int from, int count, double[][] result) {
        int size = patch, channels = 1;
        float[][] x = new float[size * size][count];
        for (int b = 0; b < count; b++) {
            float[] preprocessed = preprocess(patches[from + b]);
            for (int p = 0; p < size * size; p++) x[p][b] = preprocessed[p];
        }
        for (Conv conv : convs) {
            int outSize = (size + conv.stride - 1) / conv.stride;
            int padBefore = Math.max((outSize - 1) * conv.stride + conv.kernel - size, 0) / 2;
            float[][] y = new float[outSize * outSize * conv.out][count];
            for (int oy = 0; oy < outSize; oy++)
                for (int ox = 0; ox < outSize; ox++) {
                    int base = (oy * outSize + ox) * conv.out;
                    for (int o = 0; o < conv.out; o++) java.util.Arrays.fill(y[base + o], conv.bias[o]);
                    for (int ky = 0; ky < conv.kernel; ky++) {
                        int iy = oy * conv.stride + ky - padBefore;
                        if (iy < 0 || iy >= size) continue;
                        for (int kx = 0; kx < conv.kernel; kx++) {
                            int ix = ox * conv.stride + kx - padBefore;
                            if (ix < 0 || ix >= size) continue;
                            int input = (iy * size + ix) * channels;
                            int weight = (ky * conv.kernel + kx) * conv.in * conv.out;
                            for (int c = 0; c < conv.in; c++)
                                accumulate(y, base, x[input + c], conv.weights, weight + c * conv.out, conv.out, count);
                        }
                    }
                    for (int o = 0; o < conv.out; o++) {
                        float[] values = y[base + o];
                        for (int b = 0; b < count; b++) if (values[b] < 0) values[b] = 0;
                    }
                }
            x = y;
            size = outSize;
            channels = conv.out;
        }
        for (int b = 0; b < count; b++) {
            double[] logits = new double[levels];
            for (int k = 0; k < levels; k++) logits[k] = denseBias[k];
            for (int c = 0; c < features; c++) {
                double sum = 0;
                for (int p = 0; p < size * size; p++) sum += x[p * features + c][b];
                double value = sum / (size * size);
                for (int k = 0; k < levels; k++) logits[k] += value * denseWeights[c * levels + k];
            }
            result[from + b] = softmax(logits);
        }
    }

    /** y[base + o] += weights[w + o] * input for every output channel o, four channels per pass over the batch. */
    private static void accumulate(float[][] y, int base, float[] input, float[] weights, int w, int out, int count) {
        int o = 0;
        for (; o + 3 < out; o += 4) {
            float w0 = weights[w + o], w1 = weights[w + o + 1], w2 = weights[w + o + 2], w3 = weights[w + o + 3];
            float[] y0 = y[base + o], y1 = y[base + o + 1], y2 = y[base + o + 2], y3 = y[base + o + 3];
            for (int b = 0; b < count; b++) {
                float value = input[b];
                y0[b] += w0 * value;
                y1[b] += w1 * value;
                y2[b] += w2 * value;
                y3[b] += w3 * value;
            }
        }
        for (; o < out; o++) {
            float weight = weights[w + o];
            float[] values = y[base + o];
            for (int b = 0; b < count; b++) values[b] += weight * input[b];
        }
    }

    /** log(1 + counts - patch minimum) minus its mean, as focusnet.network.preprocess (float32 input). */
    private float[] preprocess(float[] counts) {
        float[] x = new float[counts.length];
        float minimum = Float.POSITIVE_INFINITY;
        for (int i = 0; i < counts.length; i++) {
            // What the network sees: float32 counts times float32(1 / input scale), times the input scale again.
            float scaled = counts[i] * (float) (1.0 / inputScale);
            x[i] = scaled * (float) inputScale;
            if (x[i] < minimum) minimum = x[i];
        }
        double sum = 0;
        for (int i = 0; i < x.length; i++) {
            x[i] = (float) Math.log(1.0 + (x[i] - minimum));  // log, not log1p: an intrinsic, 2x faster
            sum += x[i];
        }
        float mean = (float) (sum / x.length);
        for (int i = 0; i < x.length; i++) x[i] -= mean;
        return x;
    }

    private static double[] softmax(double[] logits) {
        double largest = Double.NEGATIVE_INFINITY, total = 0;
        for (double value : logits) largest = Math.max(largest, value);
        double[] p = new double[logits.length];
        for (int k = 0; k < logits.length; k++) total += p[k] = Math.exp(logits[k] - largest);
        for (int k = 0; k < logits.length; k++) p[k] /= total;
        return p;
    }

    // --- reading the model's properties ------------------------------------------------------------

    static String text(Properties model, String key) {
        String value = model.getProperty(key);
        if (value == null) throw new IllegalArgumentException("missing entry '" + key + "'");
        return value.trim();
    }

    static int integer(Properties model, String key) {
        try {
            return Integer.parseInt(text(model, key));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("entry '" + key + "' is not a whole number");
        }
    }

    static double number(Properties model, String key) {
        try {
            return Double.parseDouble(text(model, key));
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("entry '" + key + "' is not a number");
        }
    }

    static int[] shape(Properties model, String key) {
        String[] parts = text(model, key + ".shape").split(",");
        int[] shape = new int[parts.length];
        for (int i = 0; i < parts.length; i++) shape[i] = Integer.parseInt(parts[i].trim());
        return shape;
    }

    /** A float32 little-endian array stored as base64, of exactly {@code count} values. */
    static float[] floats(Properties model, String key, int count) {
        byte[] bytes;
        try {
            bytes = Base64.getDecoder().decode(text(model, key));
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException("entry '" + key + "' is not base64");
        }
        if (bytes.length != 4 * count)
            throw new IllegalArgumentException("entry '" + key + "' holds " + bytes.length / 4 + " values, not " + count);
        float[] values = new float[count];
        ByteBuffer.wrap(bytes).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(values);
        return values;
    }
}
