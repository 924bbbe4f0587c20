package focusnet;

/**
 * focusnet's arithmetic around the network, in plain Java: patch placement, the content test
 * (structure above noise) and the whole-image distribution. The ImageJ plugin and the Fiji script use
 * this one copy; tests compare it with focusnet's Python code (focusnet.inference, focusnet.content)
 * on the same images.
 */
public final class FocusArithmetic {
    private FocusArithmetic() {
    }

    public static final int PATCH = 84;
    public static final int LEVELS = 11;
    public static final double INPUT_SCALE = 65535.0;
    public static final int BLOCKS = 7;
    public static final int ROW_STEP = 8;
    public static final double HOT_PIXEL_SIGMAS = 6.0;
    public static final double MIN_STRUCTURE_TO_NOISE = 1.0;
    /** Patches with content but less structure-to-noise than this are too noisy to judge (focusnet.content). */
    public static final double TOO_NOISY_BELOW = 3.0;
    /** chi2.isf(1e-6, BLOCKS * BLOCKS - 3) / (BLOCKS * BLOCKS - 3): the block means' significance threshold. */
    public static final double CHI2_THRESHOLD = 2.3193529885737236;

    /** Top-left pixels of floor(size / patch) patches, the leftover pixels spread between and around them. */
    public static int[] tileStarts(int size, int patch) {
        int count = size / patch;
        int space = size - patch * count;
        int[] starts = new int[count];
        for (int i = 0; i < count; i++) starts[i] = i * patch + ((i + 1) * space) / (count + 1);
        return starts;
    }

    /** 1 - entropy(p) / ln(number of levels). */
    public static double certainty(double[] p) {
        double entropy = 0;
        for (int k = 0; k < p.length; k++) if (p[k] > 0) entropy -= p[k] * Math.log(p[k]);
        return Math.max(0.0, Math.min(1.0, 1.0 - entropy / Math.log(p.length)));
    }

    public static int argmax(double[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    /** The median (the mean of the two middle values for an even count), by selection: no full sort. */
    public static double median(double[] values) {
        double[] work = values.clone();
        int n = work.length;
        double upper = select(work, n / 2);
        if (n % 2 == 1) return upper;
        double lower = Double.NEGATIVE_INFINITY;  // the largest value before the middle one
        for (int i = 0; i < n / 2; i++) lower = Math.max(lower, work[i]);
        return 0.5 * (lower + upper);
    }

    /**
     * The k-th smallest value (from 0), Hoare's selection: values is rearranged so that none before index k is
     * larger and none after it smaller.
     */
    static double select(double[] values, int k) {
        int left = 0, right = values.length - 1;
        while (left < right) {
            double a = values[left], b = values[(left + right) >>> 1], c = values[right];
            double pivot = Math.max(Math.min(a, b), Math.min(Math.max(a, b), c));  // median of three
            int i = left, j = right;
            while (i <= j) {
                while (values[i] < pivot) i++;
                while (values[j] > pivot) j--;
                if (i <= j) {
                    double swap = values[i];
                    values[i++] = values[j];
                    values[j--] = swap;
                }
            }
            if (k <= j) right = j;
            else if (k >= i) left = i;
            else return values[k];
        }
        return values[k];
    }

    /** Whether a patch (raw counts, row-major, size x size) holds structure above its noise (focusnet.content). */
    public static boolean hasContent(double[] patch, int size) {
        return hasContent(structureAndSignificance(patch, size, 1.0));
    }

    /** Whether a patch takes part in the answer: with content and not too noisy to judge (focusnet.content). */
    public static boolean isJudged(double[] patch, int size) {
        return isJudged(structureAndSignificance(patch, size, 1.0));
    }

    /** The same decision from a region's {@link #structureAndSignificance} answer. */
    public static boolean hasContent(double[] answer) {
        return answer[1] > 0 && answer[0] >= MIN_STRUCTURE_TO_NOISE;
    }

    /** The same decision from a region's {@link #structureAndSignificance} answer. */
    public static boolean isJudged(double[] answer) {
        return hasContent(answer) && answer[0] >= TOO_NOISY_BELOW;
    }

    /**
     * focusnet.content.structure_to_noise for one region: {ratio, 1 if the block means vary significantly
     * else 0}. The ratio is reported whether or not it is significant, as focusnet's patch table does.
     */
    public static double[] structureAndSignificance(double[] patch, int size, double noiseReduction) {
        // Pixel noise from neighbouring-pixel differences, every ROW_STEP-th row (robust: median absolute value).
        int rows = (size + ROW_STEP - 1) / ROW_STEP;
        double[] differences = new double[rows * (size - 1)];
        int n = 0;
        for (int y = 0; y < size; y += ROW_STEP)
            for (int x = 0; x < size - 1; x++)
                differences[n++] = Math.abs(patch[y * size + x + 1] - patch[y * size + x]) / Math.sqrt(2.0);
        double sigma = 1.4826 * median(differences);
        if (sigma == 0) {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += differences[i] * differences[i];
            sigma = Math.sqrt(sum / n);
        }
        if (sigma == 0) return new double[] {0.0, 0.0};
        // Hot pixels (brighter than all four neighbours by HOT_PIXEL_SIGMAS sigma) capped; the border kept.
        double[] capped = patch.clone();
        for (int y = 1; y < size - 1; y++)
            for (int x = 1; x < size - 1; x++) {
                double neighbours = Math.max(Math.max(patch[(y - 1) * size + x], patch[(y + 1) * size + x]),
                                             Math.max(patch[y * size + x - 1], patch[y * size + x + 1]));
                capped[y * size + x] = Math.min(patch[y * size + x], neighbours + HOT_PIXEL_SIGMAS * sigma);
            }
        // Means of BLOCKS x BLOCKS blocks, minus the best-fitting plane (uneven illumination).
        int block = size / BLOCKS;
        double[][] means = new double[BLOCKS][BLOCKS];
        for (int by = 0; by < BLOCKS; by++)
            for (int bx = 0; bx < BLOCKS; bx++) {
                double sum = 0;
                for (int y = by * block; y < (by + 1) * block; y++)
                    for (int x = bx * block; x < (bx + 1) * block; x++) sum += capped[y * size + x];
                means[by][bx] = sum / (block * block);
            }
        double centre = (BLOCKS - 1) / 2.0, mean = 0, rowSlope = 0, colSlope = 0, squares = 0;
        for (int i = 0; i < BLOCKS; i++) squares += (i - centre) * (i - centre) * BLOCKS;
        for (int by = 0; by < BLOCKS; by++)
            for (int bx = 0; bx < BLOCKS; bx++) {
                mean += means[by][bx] / (BLOCKS * BLOCKS);
                rowSlope += (by - centre) * means[by][bx] / squares;
                colSlope += (bx - centre) * means[by][bx] / squares;
            }
        double residuals = 0;
        for (int by = 0; by < BLOCKS; by++)
            for (int bx = 0; bx < BLOCKS; bx++) {
                double residual = means[by][bx] - mean - rowSlope * (by - centre) - colSlope * (bx - centre);
                residuals += residual * residual;
            }
        double variance = residuals / (BLOCKS * BLOCKS - 3);
        double blockNoise = sigma * sigma / (block * block);
        boolean significant = variance / blockNoise > CHI2_THRESHOLD;
        double ratio = Math.sqrt(Math.max(variance - blockNoise, 0.0)) * Math.max(noiseReduction, 1.0) / sigma;
        return new double[] {ratio, significant ? 1.0 : 0.0};
    }

    /** The whole-image distribution: certainty-weighted mean over the patches with content (NaN: none). */
    public static double[] aggregate(double[][] probabilities, boolean[] content) {
        double[] distribution = new double[LEVELS];
        double weights = 0;
        int judged = 0;
        for (int i = 0; i < probabilities.length; i++) {
            if (!content[i]) continue;
            judged++;
            double c = certainty(probabilities[i]);
            weights += c;
            for (int k = 0; k < LEVELS; k++) distribution[k] += c * probabilities[i][k];
        }
        for (int k = 0; k < LEVELS; k++) {
            if (judged == 0) distribution[k] = Double.NaN;
            else if (weights > 0) distribution[k] /= weights;
        }
        if (judged > 0 && weights == 0) {  // every patch uniform: a plain mean
            for (int i = 0; i < probabilities.length; i++)
                if (content[i]) for (int k = 0; k < LEVELS; k++) distribution[k] += probabilities[i][k] / judged;
        }
        return distribution;
    }
}
