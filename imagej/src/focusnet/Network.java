package focusnet;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Base64;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
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
    /**
     * One convolution, with its weights regrouped for {@link #convolve}: for each output channel and input
     * channel, the kernel's taps in groups of {@link #GROUP} (the last group padded with zero weights).
     */
    private static final class Conv {
        final int kernel, in, out, stride, groups;
        final float[] bias;
        /** taps[(o * in + c) * groups * GROUP + t]: tap t = ky * kernel + kx, zero beyond kernel * kernel. */
        final float[] taps;

        Conv(int kernel, int in, int out, int stride, float[] weights, float[] bias) {
            this.kernel = kernel;
            this.in = in;
            this.out = out;
            this.stride = stride;
            this.bias = bias;
            groups = (kernel * kernel + GROUP - 1) / GROUP;
            taps = new float[out * in * groups * GROUP];
            for (int o = 0; o < out; o++)
                for (int c = 0; c < in; c++)
                    for (int t = 0; t < kernel * kernel; t++)
                        taps[(o * in + c) * groups * GROUP + t] = weights[(t * in + c) * out + o];
        }
    }

    private final List<Conv> convs = new ArrayList<>();
    private final float[] denseWeights, denseBias;
    private final int features, levels, patch;
    private final Layer[] layers;
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
            if (shape.length != 4 || shape[0] != shape[1] || shape[0] < 1 || shape[2] != channels || shape[3] < 1)
                throw new IllegalArgumentException(name + ".kernel has shape " + Arrays.toString(shape));
            int stride = integer(model, name + ".stride");
            if (stride < 1) throw new IllegalArgumentException(name + ".stride is " + stride + ", not a positive number");
            float[] weights = floats(model, name + ".kernel", shape[0] * shape[1] * shape[2] * shape[3]);
            float[] bias = floats(model, name + ".bias", shape[3]);
            convs.add(new Conv(shape[0], shape[2], shape[3], stride, weights, bias));
            channels = shape[3];
        }
        if (convs.isEmpty()) throw new IllegalArgumentException("no convolutions (conv0.kernel) in the model");
        features = channels;
        layers = new Layer[convs.size()];
        for (int l = 0, size = patch; l < layers.length; size = layers[l].outSize, l++)
            layers[l] = new Layer(size, convs.get(l));
        denseWeights = floats(model, "levels.kernel", features * levels);
        denseBias = floats(model, "levels.bias", levels);
    }

    public int patchSize() {
        return patch;
    }

    public int levels() {
        return levels;
    }

    /** At most this many patches go through the layers together: their activations stay in the CPU's cache. */
    static final int BATCH = 16;

    /**
     * Level probabilities of patches of raw counts, each patch row-major (patch x patch).
     *
     * @param patches raw counts (not divided by the input scale)
     * @param threads how many parts of the patches are computed side by side
     */
    public double[][] predict(final float[][] patches, int threads) throws Exception {
        final double[][] result = new double[patches.length][];
        final int workers = Math.max(1, Math.min(threads, patches.length));
        if (workers == 1) {
            predictRange(patches, 0, patches.length, result);
            return result;
        }
        ExecutorService pool = Executors.newFixedThreadPool(workers);
        try {
            List<Future<?>> futures = new ArrayList<>();
            for (int w = 0; w < workers; w++) {
                final int from = (int) ((long) patches.length * w / workers);
                final int to = (int) ((long) patches.length * (w + 1) / workers);
                futures.add(pool.submit(() -> predictRange(patches, from, to, result)));
            }
            for (Future<?> future : futures) future.get();
        } finally {
            pool.shutdown();
        }
        return result;
    }

    /** Patches from .. to - 1 in batches of nearly equal size (two sizes at most), each size with one workspace. */
    private void predictRange(float[][] patches, int from, int to, double[][] result) {
        int batches = (to - from + BATCH - 1) / BATCH;
        Map<Integer, Workspace> workspaces = new HashMap<>();
        for (int k = 0; k < batches; k++) {
            int start = from + (int) ((long) (to - from) * k / batches);
            int end = from + (int) ((long) (to - from) * (k + 1) / batches);
            predictBatch(patches, start, workspaces.computeIfAbsent(end - start, Workspace::new), result);
        }
    }

    /** The arrays one batch of count patches needs, allocated once and reused (their zero borders stay zero). */
    private final class Workspace {
        final int count;
        /** inputs[l][c]: the phase planes of layer l's input channel c. */
        final float[][][] inputs = new float[layers.length][][];
        /** shifted[l][t]: tap t's shifted input for one chunk of layer l's outputs (padding taps share tap 0's). */
        final float[][][] shifted = new float[layers.length][][];
        final int[][] offsets = new int[layers.length][];
        final float[][] sums;
        /** totals[b][c]: patch b's sum of the last layer's channel c over positions. */
        final double[][] totals;

        Workspace(int count) {
            this.count = count;
            int widest = 0, mostTaps = 0;
            for (int l = 0; l < layers.length; l++) {
                inputs[l] = new float[l == 0 ? 1 : convs.get(l - 1).out][layers[l].inputLength(count)];
                offsets[l] = layers[l].offsets(count);
                widest = Math.max(widest, convs.get(l).out);
                mostTaps = Math.max(mostTaps, layers[l].taps);
            }
            float[][] taps = new float[mostTaps][CHUNK];
            for (int l = 0; l < layers.length; l++) {
                shifted[l] = new float[offsets[l].length][];
                for (int t = 0; t < shifted[l].length; t++) shifted[l][t] = taps[layers[l].padding(t) ? 0 : t];
            }
            sums = new float[widest][CHUNK];
            totals = new double[count][features];
        }
    }

    /**
     * Where one convolution reads and writes. Its input is stored as stride x stride phase planes (the
     * pixels at rows phaseY + stride * r and columns phaseX + stride * q), each with a zero border as wide
     * as the kernel reaches: every tap of the kernel is then a fixed shift of one plane, for all outputs of all
     * patches at once. Outputs are numbered with the planes' row length (the columns and rows past the output
     * size are computed and never read), so a layer is a few long loops over chunks of outputs.
     */
    private static final class Layer {
        final int size, stride, outSize, low, side, block, slack, taps;
        /** Where tap t (ky * kernel + kx; padded to whole groups) reads: its phase plane and shift in it. */
        final int[] phases, shifts;

        Layer(int size, Conv conv) {
            this.size = size;
            stride = conv.stride;
            outSize = (size + stride - 1) / stride;
            int padBefore = Math.max((outSize - 1) * stride + conv.kernel - size, 0) / 2;
            low = Math.floorDiv(-padBefore, stride);
            int high = Math.floorDiv(conv.kernel - 1 - padBefore, stride);
            side = outSize + high - low;
            block = side * side;
            slack = (high - low) * (side + 1);
            taps = conv.kernel * conv.kernel;
            phases = new int[conv.groups * GROUP];
            shifts = new int[phases.length];
            for (int t = 0; t < phases.length; t++) {
                int tap = padding(t) ? 0 : t;  // padding taps (zero weight) read tap 0's pixels
                int dy = tap / conv.kernel - padBefore, dx = tap % conv.kernel - padBefore;
                phases[t] = Math.floorMod(dy, stride) * stride + Math.floorMod(dx, stride);
                shifts[t] = (Math.floorDiv(dy, stride) - low) * side + Math.floorDiv(dx, stride) - low;
            }
        }

        /** Whether tap t only pads the last group (zero weight). */
        boolean padding(int t) {
            return t >= taps;
        }

        /** Length of one input channel's phase planes for count patches. */
        int inputLength(int count) {
            return stride * stride * count * block + slack;
        }

        /** Where each tap reads relative to the output's index, in phase planes of count patches each. */
        int[] offsets(int count) {
            int[] offsets = new int[phases.length];
            for (int t = 0; t < phases.length; t++) offsets[t] = phases[t] * count * block + shifts[t];
            return offsets;
        }

        /** Patch b's size x size pixels (row-major) into its blocks of one input channel's phase planes. */
        void scatter(float[] pixels, int b, int count, float[] planes) {
            for (int phaseY = 0; phaseY < stride; phaseY++)
                for (int phaseX = 0; phaseX < stride; phaseX++) {
                    int plane = ((phaseY * stride + phaseX) * count + b) * block - low * side - low;
                    int columns = (size - phaseX + stride - 1) / stride;
                    for (int y = phaseY, r = 0; y < size; y += stride, r++) {
                        int from = y * size + phaseX, to = plane + r * side;
                        for (int q = 0; q < columns; q++) planes[to + q] = pixels[from + q * stride];
                    }
                }
        }

        /**
         * Outputs start .. start + length - 1 of the previous layer (index b * block + y * side + x in its own
         * geometry, {@code source}), channel by channel in sums, through ReLU into their places in this layer's
         * phase planes; the columns and rows past the previous layer's output size are skipped.
         */
        void gather(float[][] sums, int channels, Layer source, int start, int length, int count, float[][] planes) {
            int end = start + length;
            for (int row = start / source.side; row * source.side < end; row++) {
                int b = row / source.side, y = row % source.side, rowStart = row * source.side;
                if (y >= source.outSize) continue;
                int first = Math.max(rowStart, start) - rowStart, stop = Math.min(rowStart + source.outSize, end) - rowStart;
                int phaseY = y % stride, r = y / stride;
                for (int phaseX = 0; phaseX < stride; phaseX++) {
                    int x0 = first + Math.floorMod(phaseX - first, stride);
                    int target = ((phaseY * stride + phaseX) * count + b) * block + (r - low) * side - low + x0 / stride;
                    int read = rowStart - start + x0;
                    for (int c = 0; c < channels; c++) {
                        float[] values = sums[c], plane = planes[c];
                        for (int x = x0, q = target, m = read; x < stop; x += stride, q++, m += stride)
                            plane[q] = Math.max(values[m], 0f);
                    }
                }
            }
        }

        /** The same outputs of this layer, through ReLU, added to their patch's per-channel sums. */
        void sum(float[][] sums, int channels, int start, int length, double[][] totals) {
            int end = start + length;
            for (int row = start / side; row * side < end; row++) {
                int b = row / side, y = row % side, rowStart = row * side;
                if (y >= outSize) continue;
                int first = Math.max(rowStart, start), stop = Math.min(rowStart + outSize, end);
                for (int c = 0; c < channels; c++) {
                    double total = totals[b][c];
                    for (int m = first; m < stop; m++) total += Math.max(sums[c][m - start], 0f);
                    totals[b][c] = total;
                }
            }
        }
    }

    /** Taps per multiply-add statement in {@link #convolve}: a 3 x 3 kernel's. */
    static final int GROUP = 9;
    /** Outputs computed together: the shifted inputs of one channel (GROUP x CHUNK floats per group) stay in cache. */
    static final int CHUNK = 512;

    /**
     * Patches {@code from} .. {@code from + work.count - 1} into {@code result}: the preprocessed patches into
     * the first layer's phase planes; each convolution, a chunk of outputs at a time, as shifted multiply-adds
     * over whole planes, its outputs through ReLU into the next layer's planes (or, after the last, into the
     * means over positions); then the dense layer and softmax.
     */
    private void predictBatch(float[][] patches, int from, Workspace work, double[][] result) {
        int count = work.count;
        for (int b = 0; b < count; b++)
            layers[0].scatter(preprocess(patches[from + b]), b, count, work.inputs[0][0]);
        for (double[] row : work.totals) Arrays.fill(row, 0);
        float[][] sums = work.sums;
        for (int l = 0; l < layers.length; l++) {
            Layer layer = layers[l];
            Conv conv = convs.get(l);
            float[][] x = work.inputs[l], shifted = work.shifted[l];
            int[] offsets = work.offsets[l];
            int outputs = count * layer.block;
            for (int start = 0; start < outputs; start += CHUNK) {
                int length = Math.min(CHUNK, outputs - start);
                for (int o = 0; o < conv.out; o++) Arrays.fill(sums[o], 0, length, conv.bias[o]);
                for (int c = 0; c < conv.in; c++) {
                    for (int t = 0; t < layer.taps; t++) System.arraycopy(x[c], start + offsets[t], shifted[t], 0, length);
                    for (int o = 0; o < conv.out; o++)
                        for (int g = 0; g < conv.groups; g++)
                            convolve(sums[o], shifted, g * GROUP, conv.taps,
                                    ((o * conv.in + c) * conv.groups + g) * GROUP, length);
                }
                if (l + 1 < layers.length) layers[l + 1].gather(sums, conv.out, layer, start, length, count,
                        work.inputs[l + 1]);
                else layer.sum(sums, conv.out, start, length, work.totals);
            }
        }
        int positions = layers[layers.length - 1].outSize * layers[layers.length - 1].outSize;
        for (int b = 0; b < count; b++) {
            double[] means = work.totals[b], logits = new double[levels];
            for (int c = 0; c < features; c++) means[c] /= positions;  // in place: the totals are reset per batch
            for (int k = 0; k < levels; k++) {
                logits[k] = denseBias[k];
                for (int c = 0; c < features; c++) logits[k] += means[c] * denseWeights[c * levels + k];
            }
            result[from + b] = softmax(logits);
        }
    }

    /**
     * sums[m] += the GROUP taps' weights times their shifted inputs, for m below count. Every array is read
     * and written at the same index m: C2 vectorises only such loops (it cannot tell two arrays apart, so it
     * takes a write and a read at different offsets for a dependence).
     */
    private static void convolve(float[] sums, float[][] shifted, int t, float[] taps, int w, int count) {
        float[] x0 = shifted[t], x1 = shifted[t + 1], x2 = shifted[t + 2], x3 = shifted[t + 3], x4 = shifted[t + 4];
        float[] x5 = shifted[t + 5], x6 = shifted[t + 6], x7 = shifted[t + 7], x8 = shifted[t + 8];
        float w0 = taps[w], w1 = taps[w + 1], w2 = taps[w + 2], w3 = taps[w + 3], w4 = taps[w + 4];
        float w5 = taps[w + 5], w6 = taps[w + 6], w7 = taps[w + 7], w8 = taps[w + 8];
        for (int m = 0; m < count; m++)
            sums[m] += ((w0 * x0[m] + w1 * x1[m]) + (w2 * x2[m] + w3 * x3[m]))
                    + ((w4 * x4[m] + w5 * x5[m]) + (w6 * x6[m] + w7 * x7[m])) + w8 * x8[m];
    }

    /** log(1 + k) for the whole numbers k of 16-bit counts: most patches need no call of Math.log at all. */
    private static final class LogTable {
        static final float[] VALUES = new float[65536];

        static {
            for (int k = 0; k < VALUES.length; k++) VALUES[k] = (float) Math.log(1.0 + k);
        }
    }

    /** log(1 + counts - patch minimum) minus its mean, as focusnet.network.preprocess (float32 input). */
    private float[] preprocess(float[] counts) {
        float[] x = new float[counts.length];
        float minimum = Float.POSITIVE_INFINITY;
        float down = (float) (1.0 / inputScale), up = (float) inputScale;
        for (int i = 0; i < counts.length; i++) {
            // What the network sees: float32 counts times float32(1 / input scale), times the input scale again.
            x[i] = counts[i] * down * up;
            minimum = Math.min(minimum, x[i]);
        }
        float[] table = LogTable.VALUES;
        double sum = 0;
        for (int i = 0; i < x.length; i++) {
            float difference = x[i] - minimum;
            int whole = (int) difference;
            // The same float as the formula: the table holds (float) Math.log(1.0 + k) for whole k.
            x[i] = whole == difference && whole < table.length ? table[whole] : (float) Math.log(1.0 + difference);
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
