#@ File (label = "focusnet bundle (.zip)", style = "extensions:zip") bundle
#@ File (label = "Folder of images (empty: the open image)", style = "directory", required = false) folder
#@ TensorFlowService tensorFlowService
#@ LogService log

/*
 * focusnet in Fiji: measure focus with a local focusnet bundle, for one image or a whole folder.
 *
 * Loads the bundle once through imagej-tensorflow (TensorFlow-Java 1.12-1.15) and, for every image,
 * cuts it into floor(W/84) x floor(H/84) patches spread as focusnet and Fiji's plugin do, stitches them
 * into one float image (raw counts / 65535), runs the bundle's "serving_default" graph (feed "input",
 * fetch "probabilities") and prints, per patch and per image: defocus level (0 = in focus),
 * certainty (1 - entropy / ln 11), and the whole-image level, aggregate and mean certainty, as
 * `focusnet predict` defines them for images at the model's pixel size, except that this script
 * judges every patch (focusnet predict leaves out patches without content; see docs/fiji.md).
 *
 * Install: Fiji > Help > Update... > Manage update sites: enable "TensorFlow"; then open this file
 * in Fiji's script editor (language Groovy) and Run. Usage and output: see focusnet's docs/fiji.md.
 */

import ij.IJ
import ij.ImagePlus
import org.scijava.io.location.FileLocation
import org.tensorflow.Tensor

import java.nio.FloatBuffer

final int PATCH = 84
final int LEVELS = 11

// One load for the whole run (the service also caches it for the Fiji session).
def modelName = bundle.name.replaceAll(/\.zip$/, "")
def model = tensorFlowService.loadModel(new FileLocation(bundle), modelName, "inference")

int[] tileStarts(int size, int patch) {
    int count = size.intdiv(patch)
    int space = size - patch * count
    (0..<count).collect { i -> i * patch + ((i + 1) * space).intdiv(count + 1) } as int[]
}

double certainty(float[] p) {
    double entropy = 0
    p.each { v -> if (v > 0) entropy -= v * Math.log(v) }
    Math.max(0d, Math.min(1d, 1 - entropy / Math.log(p.length)))
}

int argmax(double[] values) {
    int best = 0
    values.eachWithIndex { v, i -> if (v > values[best]) best = i }
    best
}

def measure = { ImagePlus imp ->
    if (imp.getNChannels() * imp.getNSlices() * imp.getNFrames() != 1 || imp.getType() == ImagePlus.COLOR_RGB) {
        log.warn("${imp.title}: not a single-channel 2-D image; skipped")
        return
    }
    def ip = imp.getProcessor()
    int[] ys = tileStarts(ip.height, PATCH)
    int[] xs = tileStarts(ip.width, PATCH)
    if (ys.length == 0 || xs.length == 0) {
        log.warn("${imp.title}: smaller than one ${PATCH}x${PATCH} patch; not measured (NaN)")
        println("${imp.title}\tNaN")
        return
    }
    int width = xs.length * PATCH, height = ys.length * PATCH
    float[] mosaic = new float[width * height]
    for (int r = 0; r < ys.length; r++)
        for (int c = 0; c < xs.length; c++)
            for (int dy = 0; dy < PATCH; dy++)
                for (int dx = 0; dx < PATCH; dx++)
                    // getPixelValue gives raw counts for 8- and 16-bit images (no calibration)
                    mosaic[(r * PATCH + dy) * width + c * PATCH + dx] =
                        (float) (ip.getPixelValue(xs[c] + dx, ys[r] + dy) / 65535.0)

    def input = Tensor.create([height, width] as long[], FloatBuffer.wrap(mosaic))
    def output = model.session().runner().feed("input", input).fetch("probabilities").run().get(0)
    int n = ys.length * xs.length
    float[][] probabilities = new float[n][LEVELS]
    output.copyTo(probabilities)
    input.close()
    output.close()

    double[] distribution = new double[LEVELS]
    double weightSum = 0, certaintySum = 0
    println("image\trow\tcol\ty\tx\tdefocus_level\tcertainty")
    for (int i = 0; i < n; i++) {
        double c = certainty(probabilities[i])
        certaintySum += c
        weightSum += c
        for (int k = 0; k < LEVELS; k++) distribution[k] += c * probabilities[i][k]
        double[] asDouble = probabilities[i].collect { it as double } as double[]
        int row = i.intdiv(xs.length), col = i % xs.length
        println("${imp.title}\t${row}\t${col}\t${ys[row]}\t${xs[col]}\t${argmax(asDouble)}\t${String.format('%.4f', c)}")
    }
    for (int k = 0; k < LEVELS; k++)
        distribution[k] = weightSum > 0 ? distribution[k] / weightSum : 0
    if (weightSum == 0)
        for (int i = 0; i < n; i++) for (int k = 0; k < LEVELS; k++) distribution[k] += probabilities[i][k] / n
    float[] asFloat = distribution.collect { it as float } as float[]
    println(String.format("%s: defocus level %d, aggregate certainty %.4f, mean certainty %.4f, patches %d",
            imp.title, argmax(distribution), certainty(asFloat), certaintySum / n, n))
}

if (folder != null && folder.isDirectory()) {
    folder.listFiles().findAll { it.name.toLowerCase() ==~ /.*\.(tif|tiff|png)$/ }.sort().each { file ->
        def imp = IJ.openImage(file.path)
        if (imp == null) log.warn("${file.name}: cannot be opened") else measure(imp)
    }
} else {
    def imp = IJ.getImage()
    measure(imp)
}
