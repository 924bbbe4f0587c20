#@ File (label = "focusnet bundle (.zip; e.g. focusnet/models/default-bundle.zip)", style = "extensions:zip") bundle
#@ File (label = "Folder of images (empty: the open image)", style = "directory", required = false) folder
#@ Double (label = "Count that 1.0 stands for, for 32-bit images (0: measure 8- and 16-bit images only)", value = 0) countScale
#@ Boolean (label = "Also list every patch", value = false) perPatch
#@ TensorFlowService tensorFlowService
#@ LogService log

/*
 * focusnet in Fiji, no Python needed: measure focus with a focusnet bundle, for the open image or a folder.
 *
 * - The bundle is unpacked by Fiji's TensorFlow service into Fiji.app/models/<name>-<hash>/: a changed
 *   bundle (other SHA-256) is unpacked again, never mistaken for the old one.
 * - Input and output tensors are read from the bundle's "serving_default" signature.
 * - Pixels are read raw (no calibration table), by focusnet's rules: 8- and 16-bit images are raw counts;
 *   32-bit images need "Count that 1.0 stands for" (value x count); colour is refused.
 * - Each image is cut into 84 x 84 patches placed as focusnet and Fiji's plugin place them; patches without
 *   structure above their noise (empty background) or too noisy to judge are not judged, as in `focusnet
 *   predict`; the patches are stitched, classified in one call, and the judged ones combined by certainty.
 * - Results go to an ImageJ Results table "focusnet" (per image: image, defocus level, aggregate and mean
 *   certainty, patch count, content fraction, judged fraction), saved as focusnet_results.csv beside the images (and
 *   focusnet_patches.csv with "Also list every patch"); the open image gets the patches as an overlay
 *   (colour: level from green, in focus, to magenta; pale: uncertain; blue: not judged).
 * - The model is loaded once and closed at the end.
 * Not done here (see docs/fiji.md): resampling to the model's pixel size, defocus in micrometres.
 *
 * Install: Fiji > Help > Update... > Manage update sites: enable "TensorFlow"; put focusnet_.jar (imagej/ in
 * focusnet's repository: the arithmetic around the network, shared with the ImageJ plugin) into
 * Fiji.app/plugins/; restart; open this file in Fiji's script editor (language Groovy) and Run. Without
 * TensorFlow, the ImageJ plugin alone (Plugins > focusnet > Measure Focus) measures the same.
 */

import ij.IJ
import ij.ImagePlus
import ij.gui.Overlay
import ij.gui.Roi
import ij.measure.ResultsTable
import focusnet.FocusArithmetic
import focusnet.Measure_Focus
import org.scijava.io.location.FileLocation
import org.tensorflow.Tensor
import org.tensorflow.framework.MetaGraphDef

import java.awt.Color
import java.nio.FloatBuffer
import java.security.MessageDigest

// The arithmetic around the network (patch placement, content test, certainty, aggregation) is focusnet's
// one Java copy, from the ImageJ plugin's jar (imagej/focusnet_.jar in Fiji.app/plugins/).

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

/** Raw counts by focusnet's rules (the plugin's): 8- and 16-bit as they are; 32-bit only with a count for 1.0. */
double[] rawCounts(ImagePlus imp, double scale) {
    try {
        return Measure_Focus.counts(imp.getBitDepth(), imp.getProcessor(), scale) as double[]
    } catch (IllegalArgumentException e) {
        log.warn("${imp.title}: ${e.message} (NaN)")
        return null
    }
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
    table.addValue("image", imp.title)
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
        if (counts != null) log.warn("${imp.title}: smaller than one patch (NaN)")
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
            patchTable.addValue("image", imp.title)
            patchTable.addValue("y", ys[i.intdiv(xs.length)])
            patchTable.addValue("x", xs[i % xs.length])
            patchTable.addValue("content", content[i] ? 1 : 0)
            patchTable.addValue("judged", judgedPatches[i] ? 1 : 0)
            patchTable.addValue("defocus_level", judgedPatches[i] ? level : Double.NaN)
            patchTable.addValue("certainty", judgedPatches[i] ? c : Double.NaN)
        }
        def roi = new Roi(xs[i % xs.length], ys[i.intdiv(xs.length)], F.PATCH, F.PATCH)
        // focusnet's colours: hue by level (green in focus ... magenta); pale when uncertain; blue when not judged.
        roi.setStrokeColor(judgedPatches[i] ? Measure_Focus.levelColour(level, c) : Measure_Focus.NOT_JUDGED)
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
                    table.addValue("image", file.name)
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
