#@ File (label = "focusnet bundle (.zip; e.g. focusnet/models/default-bundle.zip)", style = "extensions:zip") bundle
#@ File (label = "Folder of images (empty: the open image)", style = "directory", required = false) folder
#@ Double (label = "Count that 1.0 stands for, for images that are not 16-bit (0: measure 16-bit images only)", value = 0) countScale
#@ Boolean (label = "Also list every patch", value = false) perPatch
#@ TensorFlowService tensorFlowService
#@ LogService log

/*
 * focusnet in Fiji, no Python needed: measure focus with a focusnet bundle, for the open image or a folder.
 *
 * - The bundle is unpacked by Fiji's TensorFlow service into Fiji.app/models/<name>-<hash>/: a changed
 *   bundle (other SHA-256) is unpacked again, never mistaken for the old one.
 * - Input and output tensors are read from the bundle's "serving_default" signature.
 * - Pixels are read raw (no calibration table). 16-bit images are raw counts; any other type is refused
 *   unless "Count that 1.0 stands for" is given (8-bit: value / 255 x count; 32-bit: value x count).
 * - Each image is cut into 84 x 84 patches placed as focusnet and Fiji's plugin place them; patches without
 *   structure above their noise (empty background) or too noisy to judge are not judged, as in `focusnet
 *   predict`; the patches are stitched, classified in one call, and the judged ones combined by certainty.
 * - Results go to an ImageJ Results table "focusnet" (per image: file, defocus level, aggregate and mean
 *   certainty, patch count, content fraction, judged fraction), saved as focusnet_results.csv beside the images (and
 *   focusnet_patches.csv with "Also list every patch"); the open image gets the patches as an overlay
 *   (colour: level from green, in focus, to magenta; pale: uncertain; blue: not judged).
 * - The model is loaded once and closed at the end.
 * Not done here (see docs/fiji.md): resampling to the model's pixel size, defocus in micrometres.
 *
 * Install: Fiji > Help > Update... > Manage update sites: enable "TensorFlow"; restart; open this file in
 * Fiji's script editor (language Groovy) and Run.
 */

import ij.IJ
import ij.ImagePlus
import ij.gui.Overlay
import ij.gui.Roi
import ij.measure.ResultsTable
import org.scijava.io.location.FileLocation
import org.tensorflow.Tensor
import org.tensorflow.framework.MetaGraphDef

import java.awt.Color
import java.nio.FloatBuffer
import java.security.MessageDigest

// BEGIN SHARED ARITHMETIC (Java syntax: tests/integration/test_fiji.py compiles this block with javac and checks it
// against focusnet's Python code on the same images)
class FocusArithmetic {
    static final int PATCH = 84;
    static final int LEVELS = 11;
    static final double INPUT_SCALE = 65535.0;
    static final int BLOCKS = 7;
    static final int ROW_STEP = 8;
    static final double HOT_PIXEL_SIGMAS = 6.0;
    static final double MIN_STRUCTURE_TO_NOISE = 1.0;
    /** Patches with content but less structure-to-noise than this are too noisy to judge (focusnet.content). */
    static final double TOO_NOISY_BELOW = 3.0;
    /** chi2.isf(1e-6, BLOCKS * BLOCKS - 3) / (BLOCKS * BLOCKS - 3): the block means' significance threshold. */
    static final double CHI2_THRESHOLD = 2.3193529885737236;

    /** Top-left pixels of floor(size / patch) patches, the leftover pixels spread between and around them. */
    static int[] tileStarts(int size, int patch) {
        int count = size / patch;
        int space = size - patch * count;
        int[] starts = new int[count];
        for (int i = 0; i < count; i++) starts[i] = i * patch + ((i + 1) * space) / (count + 1);
        return starts;
    }

    /** 1 - entropy(p) / ln(number of levels). */
    static double certainty(double[] p) {
        double entropy = 0;
        for (int k = 0; k < p.length; k++) if (p[k] > 0) entropy -= p[k] * Math.log(p[k]);
        return Math.max(0.0, Math.min(1.0, 1.0 - entropy / Math.log(p.length)));
    }

    static int argmax(double[] values) {
        int best = 0;
        for (int i = 1; i < values.length; i++) if (values[i] > values[best]) best = i;
        return best;
    }

    static double median(double[] values) {
        double[] sorted = values.clone();
        java.util.Arrays.sort(sorted);
        int n = sorted.length;
        return n % 2 == 1 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
    }

    /** Whether a patch (raw counts, row-major, size x size) holds structure above its noise (focusnet.content). */
    static boolean hasContent(double[] patch, int size) {
        return structureToNoise(patch, size) >= MIN_STRUCTURE_TO_NOISE;
    }

    /** Whether a patch takes part in the answer: with content and not too noisy to judge (focusnet.content). */
    static boolean isJudged(double[] patch, int size) {
        return structureToNoise(patch, size) >= TOO_NOISY_BELOW;
    }

    /** A patch's structure over its pixel noise, 0 when its block means do not vary significantly. */
    static double structureToNoise(double[] patch, int size) {
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
        if (sigma == 0) return 0.0;
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
        double ratio = Math.sqrt(Math.max(variance - blockNoise, 0.0)) / sigma;
        return significant ? ratio : 0.0;
    }

    /** The whole-image distribution: certainty-weighted mean over the patches with content (NaN: none). */
    static double[] aggregate(double[][] probabilities, boolean[] content) {
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
// END SHARED ARITHMETIC

def F = FocusArithmetic

String sha256(File file) {
    def digest = MessageDigest.getInstance("SHA-256")
    file.withInputStream { stream ->
        byte[] buffer = new byte[1 << 16]
        int read
        while ((read = stream.read(buffer)) > 0) digest.update(buffer, 0, read)
    }
    digest.digest().collect { String.format("%02x", it) }.join()
}

String opName(String tensorName) { tensorName.endsWith(":0") ? tensorName[0..-3] : tensorName }

/** Raw counts of one pixel: 16-bit as they are; other types only with a count that 1.0 stands for. */
double[] rawCounts(ImagePlus imp, double scale) {
    def ip = imp.getProcessor()
    double factor
    switch (imp.getBitDepth()) {
        case 16: factor = 1.0; break
        case 8: factor = scale / 255.0; break
        case 32: factor = scale; break
        default: factor = 0
    }
    if (factor <= 0) return null
    double[] counts = new double[ip.width * ip.height]
    for (int y = 0; y < ip.height; y++)
        for (int x = 0; x < ip.width; x++)
            counts[y * ip.width + x] = ip.getf(x, y) * factor  // getf: the stored value, no calibration
    counts
}

def modelName = bundle.name.replaceAll(/\.zip$/, "") + "-" + sha256(bundle).substring(0, 12)
// loadCachedModel (not the deprecated loadModel): a CachedModelBundle, closed at the end.
def cached = tensorFlowService.loadCachedModel(new FileLocation(bundle), modelName, "inference")
def model = cached.model()
def signature = MetaGraphDef.parseFrom(model.metaGraphDef()).getSignatureDefOrThrow("serving_default")
def inputOp = opName(signature.getInputsOrThrow("input").getName())
def outputOp = opName(signature.getOutputsOrThrow("probabilities").getName())

def table = new ResultsTable()
def patchTable = new ResultsTable()

def measure = { ImagePlus imp, boolean showOverlay ->
    table.incrementCounter()
    table.addValue("file", imp.title)
    if (imp.getNChannels() * imp.getNSlices() * imp.getNFrames() != 1 || imp.getType() == ImagePlus.COLOR_RGB) {
        log.warn("${imp.title}: not a single-channel 2-D image; not measured (NaN)")
        ["defocus_level", "aggregate_certainty", "mean_certainty", "patches", "content_fraction",
         "judged_fraction"].each { table.addValue(it, Double.NaN) }
        return
    }
    def counts = rawCounts(imp, countScale)
    def ip = imp.getProcessor()
    int[] ys = F.tileStarts(ip.height, F.PATCH), xs = F.tileStarts(ip.width, F.PATCH)
    int n = ys.length * xs.length
    table.addValue("patches", n)
    if (counts == null || n == 0) {
        log.warn(counts == null ? "${imp.title}: ${imp.getBitDepth()}-bit pixels are not raw 16-bit counts; give " +
                 "'Count that 1.0 stands for' to measure them (NaN)" : "${imp.title}: smaller than one patch (NaN)")
        ["defocus_level", "aggregate_certainty", "mean_certainty", "content_fraction", "judged_fraction"].each {
            table.addValue(it, Double.NaN) }
        return
    }
    boolean[] content = new boolean[n]
    boolean[] judgedPatches = new boolean[n]  // with content and not too noisy: these take part in the answer
    float[] mosaic = new float[n * F.PATCH * F.PATCH]  // one row of tiles, as Fiji's plugin feeds them
    for (int i = 0; i < n; i++) {
        int y0 = ys[i.intdiv(xs.length)], x0 = xs[i % xs.length]
        double[] patch = new double[F.PATCH * F.PATCH]
        for (int dy = 0; dy < F.PATCH; dy++)
            for (int dx = 0; dx < F.PATCH; dx++) {
                patch[dy * F.PATCH + dx] = counts[(y0 + dy) * ip.width + x0 + dx]
                mosaic[dy * n * F.PATCH + i * F.PATCH + dx] = (float) (patch[dy * F.PATCH + dx] / F.INPUT_SCALE)
            }
        double ratio = F.structureToNoise(patch, F.PATCH)
        content[i] = ratio >= F.MIN_STRUCTURE_TO_NOISE
        judgedPatches[i] = ratio >= F.TOO_NOISY_BELOW
    }
    def input = Tensor.create([F.PATCH, n * F.PATCH] as long[], FloatBuffer.wrap(mosaic))
    def output = model.session().runner().feed(inputOp, input).fetch(outputOp).run().get(0)
    float[][] raw = new float[n][F.LEVELS]
    output.copyTo(raw)
    input.close()
    output.close()
    double[][] probabilities = raw.collect { row -> row.collect { it as double } as double[] } as double[][]
    double[] distribution = F.aggregate(probabilities, judgedPatches)
    int withContent = content.count { it }
    int judged = judgedPatches.count { it }
    double meanCertainty = judged ? (0..<n).findAll { judgedPatches[it] }.sum { F.certainty(probabilities[it]) } /
                                    judged : Double.NaN
    table.addValue("defocus_level", judged ? F.argmax(distribution) : Double.NaN)
    table.addValue("aggregate_certainty", judged ? F.certainty(distribution) : Double.NaN)
    table.addValue("mean_certainty", meanCertainty)
    table.addValue("content_fraction", withContent / (double) n)
    table.addValue("judged_fraction", judged / (double) n)
    if (!withContent) log.warn("${imp.title}: no content: no patch holds structure above its noise (NaN)")
    else if (!judged) log.warn("${imp.title}: too noisy to judge: no patch stands far enough above its noise (NaN)")
    def overlay = new Overlay()
    for (int i = 0; i < n; i++) {
        int level = F.argmax(probabilities[i])
        double c = F.certainty(probabilities[i])
        if (perPatch) {
            patchTable.incrementCounter()
            patchTable.addValue("file", imp.title)
            patchTable.addValue("y", ys[i.intdiv(xs.length)])
            patchTable.addValue("x", xs[i % xs.length])
            patchTable.addValue("content", content[i] ? 1 : 0)
            patchTable.addValue("judged", judgedPatches[i] ? 1 : 0)
            patchTable.addValue("defocus_level", judgedPatches[i] ? level : Double.NaN)
            patchTable.addValue("certainty", judgedPatches[i] ? c : Double.NaN)
        }
        def roi = new Roi(xs[i % xs.length], ys[i.intdiv(xs.length)], F.PATCH, F.PATCH)
        // Hue from green (level 0) to magenta (level 10); pale when uncertain; blue when not judged.
        def colour = Color.getHSBColor((float) ((120 + 180 * level / (F.LEVELS - 1)) % 360 / 360.0), (float) c, 1f)
        roi.setStrokeColor(judgedPatches[i] ? colour : new Color(64, 115, 255))
        roi.setStrokeWidth(judgedPatches[i] ? 2 : 1)
        overlay.add(roi)
    }
    if (showOverlay) imp.setOverlay(overlay)
}

try {
    if (folder != null && folder.isDirectory()) {
        folder.listFiles().findAll { it.name.toLowerCase() ==~ /.*\.(tif|tiff|png)$/ && !it.name.startsWith("focusnet_") }
            .sort().each { file ->
                def imp = IJ.openImage(file.path)
                if (imp == null) {
                    log.warn("${file.name}: cannot be opened (NaN)")
                    table.incrementCounter()
                    table.addValue("file", file.name)
                } else {
                    measure(imp, false)
                }
            }
        table.save(new File(folder, "focusnet_results.csv").path)
        if (perPatch) patchTable.save(new File(folder, "focusnet_patches.csv").path)
    } else {
        def imp = IJ.getImage()
        measure(imp, true)
        def directory = imp.getOriginalFileInfo()?.directory
        if (directory) table.save(new File(directory, "focusnet_results.csv").path)
    }
    table.show("focusnet")
    if (perPatch) patchTable.show("focusnet patches")
} finally {
    cached.close()
}
