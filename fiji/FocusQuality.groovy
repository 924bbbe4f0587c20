#@ File (label = "focusnet bundle (.zip; e.g. focusnet/models/default-bundle.zip)", style = "extensions:zip") bundle
#@ File (label = "Folder of images (empty: the open image)", style = "directory", required = false) folder
#@ Double (label = "Pixel size (um; 0: the image's calibration, else the model's)", value = 0) pixelSize
#@ Double (label = "Count that 1.0 stands for, for 32-bit images (0: measure 8- and 16-bit images only)", value = 0) countScale
#@ Double (label = "NA of the objective (0: the model's)", value = 0) aperture
#@ Double (label = "Immersion refractive index (0: the model's)", value = 0) immersion
#@ Double (label = "Wavelength (um; emission; 0: the model's)", value = 0) wavelength
#@ Boolean (label = "Also list every patch", value = false) perPatch
#@ TensorFlowService tensorFlowService
#@ LogService log

/*
 * focusnet in Fiji with Fiji's TensorFlow: the bundle's SavedModel classifies the patches; everything else is
 * the focusnet ImageJ plugin's own code (focusnet_.jar, which must be in Fiji.app/plugins/), so this script
 * gives the plugin's numbers: the same patches, content test, resampling from the image's calibration,
 * 8-, 16- and 32-bit rules, aggregation, defocus in micrometres for your objective and the same columns as
 * `focusnet predict`.
 *
 * - The bundle is unpacked by Fiji's TensorFlow service into Fiji.app/models/<name>-<hash>/: a changed
 *   bundle (other SHA-256) is unpacked again, never mistaken for the old one. Its imagej-model.properties
 *   (settings, the level-to-micrometre table) is checked against the manifest's SHA-256 by the plugin's code.
 * - Input and output tensors are read from the bundle's "serving_default" signature; the patches go in as one
 *   row of tiles, as Fiji's own plugin feeds them.
 * - Results go to the Results tables "focusnet" (and "focusnet patches"), saved as focusnet_results.csv (and
 *   focusnet_results_patches.csv) in the folder, or beside the open image; the open image gets the patches as
 *   an overlay in focusnet's colours. The model is loaded once and closed at the end.
 *
 * Install: Fiji > Help > Update... > Manage update sites: enable "TensorFlow"; put focusnet_.jar (imagej/ in
 * focusnet's repository) into Fiji.app/plugins/; restart; open this file in Fiji's script editor (language
 * Groovy) and Run. Without TensorFlow, the plugin alone (Plugins > focusnet > Measure Focus) measures the same.
 */

import focusnet.Bundle
import focusnet.Engine
import focusnet.FocusArithmetic
import focusnet.Measure_Focus
import ij.IJ
import org.scijava.io.location.FileLocation
import org.tensorflow.Tensor
import org.tensorflow.framework.MetaGraphDef

import java.nio.FloatBuffer
import java.security.MessageDigest

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

def javaBundle = Bundle.read(bundle.path)  // refuses a damaged or modified bundle, with the reason
double[] micrometres = javaBundle.micrometres(wavelength, aperture, immersion)
def modelName = bundle.name.replaceAll(/\.zip$/, "") + "-" + sha256(bundle).substring(0, 12)
// loadCachedModel (not the deprecated loadModel): a CachedModelBundle, closed at the end.
def cached = tensorFlowService.loadCachedModel(new FileLocation(bundle), modelName, "inference")
try {
    def model = cached.model()
    def signature = MetaGraphDef.parseFrom(model.metaGraphDef()).getSignatureDefOrThrow("serving_default")
    def inputOp = opName(signature.getInputsOrThrow("input").getName())
    def outputOp = opName(signature.getOutputsOrThrow("probabilities").getName())
    int P = FocusArithmetic.PATCH

    // Patches of raw counts -> level probabilities, by Fiji's TensorFlow: one row of tiles, counts / 65535.
    def classifier = { float[][] patches ->
        int n = patches.length
        float[] mosaic = new float[n * P * P]
        float toInput = (float) (1.0 / FocusArithmetic.INPUT_SCALE)
        for (int i = 0; i < n; i++)
            for (int dy = 0; dy < P; dy++)
                for (int dx = 0; dx < P; dx++)
                    mosaic[dy * n * P + i * P + dx] = patches[i][dy * P + dx] * toInput
        def input = Tensor.create([P, n * P] as long[], FloatBuffer.wrap(mosaic))
        def output = model.session().runner().feed(inputOp, input).fetch(outputOp).run().get(0)
        float[][] raw = new float[n][FocusArithmetic.LEVELS]
        output.copyTo(raw)
        input.close()
        output.close()
        raw.collect { row -> row.collect { it as double } as double[] } as double[][]
    } as Engine.Classifier

    def results
    File csv
    if (folder != null && folder.isDirectory()) {
        results = Measure_Focus.measureFolder(folder, javaBundle, pixelSize, countScale, micrometres, classifier)
        csv = new File(folder, "focusnet_results.csv")
    } else {
        def imp = IJ.getImage()
        results = Measure_Focus.measureImage(imp, imp.title, javaBundle, pixelSize, countScale, micrometres,
                                             classifier)
        if (results.size() == 1 && imp.getStackSize() == 1) imp.setOverlay(Measure_Focus.overlay(results[0]))
        def directory = imp.getOriginalFileInfo()?.directory
        csv = directory ? new File(directory, "focusnet_results.csv") : null
    }
    results.findAll { it.reason }.each { log.warn(it.message) }
    def rows = results.collect { Measure_Focus.cells(it) }
    def patchRows = results.findAll { !it.reason }.collectMany { Measure_Focus.patchCells(it, javaBundle) }
    Measure_Focus.show("focusnet", Measure_Focus.COLUMNS, rows)
    if (perPatch) Measure_Focus.show("focusnet patches", Measure_Focus.PATCH_COLUMNS, patchRows)
    if (csv != null) {
        Measure_Focus.writeCsv(csv, Measure_Focus.COLUMNS, rows)
        if (perPatch)
            Measure_Focus.writeCsv(new File(csv.parentFile, "focusnet_results_patches.csv"),
                                   Measure_Focus.PATCH_COLUMNS, patchRows)
    }
} finally {
    cached.close()
}
