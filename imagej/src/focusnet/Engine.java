package focusnet;

/**
 * One image's focus, as focusnet.inference.predict_image measures it: patches placed as focusnet places
 * them, the content test, the network, the certainty-weighted whole-image distribution and the distance
 * from focus in micrometres for the user's objective. Images at another pixel size are resampled to the model's
 * ({@link Resample}); their content is judged in the original pixels, as focusnet does.
 */
public final class Engine {
    /** Images within this relative difference of the model's pixel size are measured as they are. */
    public static final double PIXEL_SIZE_TOLERANCE = 0.005;

    private Engine() {
    }

    /**
     * What classifies patches of raw counts (each row-major, patch x patch) into level probabilities: the
     * bundle's Java network, or, in the Fiji script, Fiji's TensorFlow running the bundle's SavedModel.
     */
    public interface Classifier {
        double[][] predict(float[][] patches) throws Exception;
    }

    /** The answer for one image: the columns of focusnet predict's CSV, and every patch. */
    public static final class Result {
        public String image, pixelSizeSource = "", reason = "";
        public double level = Double.NaN, meanCertainty = Double.NaN, aggregateCertainty = Double.NaN;
        public double contentFraction = Double.NaN, judgedFraction = Double.NaN, defocusUm = Double.NaN;
        public double pixelSizeUm = Double.NaN;
        public double lowerBound = Double.NaN;
        public double[] distribution = nans(FocusArithmetic.LEVELS);
        public int patches, patchSize = FocusArithmetic.PATCH;
        public String message = "";
        public int[] ys = new int[0], xs = new int[0];
        public double[][] probabilities = new double[0][];
        public boolean[] content = new boolean[0], judged = new boolean[0];
        public double[] structureToNoise = new double[0], micrometres = new double[0];

        Result(String image) {
            this.image = image;
        }

        boolean measured() {
            return reason.isEmpty();
        }
    }

    /** Why an image has no answer: focusnet's short reason (the CSV's reason column) and the message. */
    static Result failed(Result result, String reason, String message) {
        result.reason = reason;
        result.message = result.image + ": " + message;
        return result;
    }

    /**
     * Measure one image of raw counts.
     *
     * @param name        names the image in the table and in messages
     * @param counts      raw counts, row-major (width x height)
     * @param pixelSizeUm the pixel size in the sample plane (NaN: the model's, reported as assumed)
     * @param source      where the pixel size came from: given, file or assumed
     * @param micrometres the objective's micrometres per level of the bundle's grid ({@link Bundle#micrometres})
     * @param threads     patches computed side by side by the bundle's Java network
     */
    public static Result measure(String name, float[] counts, int width, int height, Bundle bundle,
                                 double pixelSizeUm, String source, double[] micrometres, int threads)
            throws Exception {
        return measure(name, counts, width, height, bundle, pixelSizeUm, source, micrometres,
                patches -> bundle.network.predict(patches, threads));
    }

    /** The same with another classifier of the bundle's model (the Fiji script's TensorFlow). */
    public static Result measure(String name, float[] counts, int width, int height, Bundle bundle,
                                 double pixelSizeUm, String source, double[] micrometres, Classifier classifier)
            throws Exception {
        Result result = new Result(name);
        if (Double.isNaN(pixelSizeUm)) {
            pixelSizeUm = bundle.pixelSizeUm;
            source = "assumed";
        }
        result.pixelSizeUm = pixelSizeUm;
        result.pixelSizeSource = source;
        int patch = bundle.network.patchSize();
        double zoom = pixelSizeUm / bundle.pixelSizeUm;
        boolean resampled = Math.abs(zoom - 1) > PIXEL_SIZE_TOLERANCE;
        float[] work = counts;
        int workWidth = width, workHeight = height;
        if (resampled) {
            int[] shape = new int[2];
            work = Resample.rescale(counts, width, height, zoom, shape);
            workHeight = shape[0];
            workWidth = shape[1];
        }
        if (workWidth < patch || workHeight < patch)
            return failed(result, "unmeasurable", workWidth + "x" + workHeight + " pixels" + (resampled
                    ? " at the model's " + bundle.pixelSizeUm + " um pixels (from " + width + "x" + height
                    + " pixels of " + pixelSizeUm + " um)" : "") + " is smaller than one " + patch + "x" + patch
                    + " patch");
        float low = Float.POSITIVE_INFINITY, high = Float.NEGATIVE_INFINITY;
        for (float value : counts) {
            low = Math.min(low, value);
            high = Math.max(high, value);
        }
        if (low == high)
            return failed(result, "unmeasurable", "constant image (every pixel is " + low + "); there is nothing to "
                    + "judge focus by");
        int[] ys = FocusArithmetic.tileStarts(workHeight, patch), xs = FocusArithmetic.tileStarts(workWidth, patch);
        // Content is judged in the original pixels (resampling would correlate the noise the test measures).
        int region = resampled ? Math.min((int) Math.rint(patch / zoom), Math.min(width, height)) : patch;
        int n = ys.length * xs.length;
        float[][] patches = new float[n][patch * patch];
        double[][] answers = new double[n][];
        final float[] image = work;
        final int imageWidth = workWidth;
        // Each patch's pixels and content test on its own: side by side on the CPUs.
        java.util.stream.IntStream.range(0, n).parallel().forEach(i -> {
            int y0 = ys[i / xs.length], x0 = xs[i % xs.length];
            for (int dy = 0; dy < patch; dy++)
                System.arraycopy(image, (y0 + dy) * imageWidth + x0, patches[i], dy * patch, patch);
            double[] pixels = new double[region * region];
            if (resampled) {
                int oy = original(y0, zoom, height - region), ox = original(x0, zoom, width - region);
                for (int dy = 0; dy < region; dy++)
                    for (int dx = 0; dx < region; dx++) pixels[dy * region + dx] = counts[(oy + dy) * width + ox + dx];
                answers[i] = FocusArithmetic.structureAndSignificance(pixels, region, 1.0 / zoom);
            } else {
                for (int j = 0; j < pixels.length; j++) {
                    // What predict_image tests: float32 counts / 65535 (as the network sees them), times 65535.
                    float scaled = patches[i][j] * (float) (1.0 / FocusArithmetic.INPUT_SCALE);
                    pixels[j] = scaled * (float) FocusArithmetic.INPUT_SCALE;
                }
                answers[i] = FocusArithmetic.structureAndSignificance(pixels, region, 1.0);
            }
        });
        boolean[] content = new boolean[n], judged = new boolean[n];
        int withContent = 0, judgedCount = 0;
        double[] ratios = new double[n];
        for (int i = 0; i < n; i++) {
            ratios[i] = answers[i][0];
            content[i] = FocusArithmetic.hasContent(answers[i]);
            judged[i] = FocusArithmetic.isJudged(answers[i]);
            if (content[i]) withContent++;
            if (judged[i]) judgedCount++;
        }
        double[][] probabilities = classifier.predict(patches);
        result.patches = n;
        result.patchSize = region;
        result.ys = resampled ? originals(ys, zoom, height - region) : ys;
        result.xs = resampled ? originals(xs, zoom, width - region) : xs;
        result.probabilities = probabilities;
        result.content = content;
        result.judged = judged;
        result.structureToNoise = ratios;
        result.contentFraction = withContent / (double) n;
        result.judgedFraction = judgedCount / (double) n;
        if (withContent == 0)
            return failed(result, "no content", "no content: none of its " + n + " patches holds structure above its "
                    + "noise (an empty or dark field); it is neither in focus nor out of focus");
        if (judgedCount == 0)
            return failed(result, "too noisy", "too noisy to judge: " + withContent + " of its " + n + " patches hold "
                    + "structure, but none stands far enough above its noise for the model's answer to be reliable");
        double[] distribution = FocusArithmetic.aggregate(probabilities, judged);
        int last = FocusArithmetic.LEVELS - 1;
        int level = FocusArithmetic.argmax(distribution);
        double expected = 0, certainties = 0;
        for (int k = 0; k <= last; k++) expected += k * distribution[k];
        for (int i = 0; i < n; i++) if (judged[i]) certainties += FocusArithmetic.certainty(probabilities[i]);
        result.distribution = distribution;
        result.level = level;
        result.aggregateCertainty = FocusArithmetic.certainty(distribution);
        result.meanCertainty = certainties / judgedCount;
        result.defocusUm = bundle.defocusUm(level == last ? last : expected, micrometres);
        result.micrometres = micrometres;
        result.lowerBound = level == last ? 1 : 0;
        return result;
    }

    /** Where a patch of the resampled image lies in the original (numpy's round: half to even). */
    static int original(int start, double zoom, int last) {
        return (int) Math.max(0, Math.min(last, Math.rint(start / zoom)));
    }

    static int[] originals(int[] starts, double zoom, int last) {
        int[] result = new int[starts.length];
        for (int i = 0; i < starts.length; i++) result[i] = original(starts[i], zoom, last);
        return result;
    }

    static double[] nans(int count) {
        double[] values = new double[count];
        java.util.Arrays.fill(values, Double.NaN);
        return values;
    }
}
