package focusnet;

import ij.IJ;
import ij.ImagePlus;
import ij.ImageStack;
import ij.Prefs;
import ij.gui.GenericDialog;
import ij.gui.Overlay;
import ij.gui.Roi;
import ij.macro.Interpreter;
import ij.measure.Calibration;
import ij.measure.ResultsTable;
import ij.plugin.PlugIn;
import ij.process.ImageProcessor;

import java.awt.Color;
import java.awt.GraphicsEnvironment;
import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;

/**
 * Plugins &gt; focusnet &gt; Measure Focus: focusnet's focus measurement in ImageJ 1.x or Fiji, no TensorFlow.
 *
 * <p>Measures the current image (one row per plane of a stack) or every image of a folder with a focusnet
 * bundle (default: the shipped model inside this jar), into a Results table named "focusnet" with the
 * columns of {@code focusnet predict}'s CSV, optionally saved as CSV; the current 2-D image gets its patches
 * as an overlay in focusnet's colours. The dialog is recorded by the macro recorder:
 * {@code run("Measure Focus", "bundle=[] folder=[] pixel=0 count=0 na=0 immersion=0 wavelength=0
 * save=[/path/focus.csv]");}
 */
public class Measure_Focus implements PlugIn {
    public static final String VERSION = "0.1.0";
    /** The columns of focusnet predict's CSV (focusnet.contract.IMAGE_COLUMNS). */
    public static final String[] COLUMNS = columns();
    static final String TABLE = "focusnet";
    /** The columns of focusnet predict's --patches-csv (focusnet.contract.PATCH_COLUMNS). */
    public static final String[] PATCH_COLUMNS = patchColumns();
    static final String PATCH_TABLE = "focusnet patches";
    /** focusnet.figures.NO_CONTENT_COLOUR: patches that take no part in the answer. */
    public static final Color NOT_JUDGED = new Color(0.25f, 0.45f, 1.0f);

    @Override
    public void run(String arg) {
        if ("about".equals(arg)) {
            IJ.showMessage("focusnet " + VERSION, "focusnet " + VERSION + ": focus quality of fluorescence images "
                    + "(Yang et al., BMC Bioinformatics 19:77, 2018)\nin plain Java, with the model of a focusnet "
                    + "bundle (default: the shipped model in this jar).");
            return;
        }
        GenericDialog dialog = new GenericDialog("focusnet: Measure Focus");
        dialog.addStringField("Bundle (.zip or folder; empty: the shipped model)", "", 40);
        dialog.addStringField("Folder of images (empty: the current image)", "", 40);
        dialog.addNumericField("Pixel size (um; 0: the image's calibration, else the model's)", 0, 4);
        dialog.addNumericField("Count that 1.0 stands for (32-bit images only; 0: none)", 0, 1);
        dialog.addNumericField("NA of the objective (0: the model's)", 0, 3);
        dialog.addNumericField("Immersion refractive index (0: the model's)", 0, 3);
        dialog.addNumericField("Wavelength (um; emission; 0: the model's)", 0, 3);
        dialog.addStringField("Save the table as CSV (empty: do not save)", "", 40);
        dialog.addCheckbox("List every patch (table 'focusnet patches'; saved as <CSV name>_patches.csv)", false);
        dialog.showDialog();
        if (dialog.wasCanceled()) return;
        String bundlePath = dialog.getNextString(), folder = dialog.getNextString();
        double pixelSize = dialog.getNextNumber(), scale = dialog.getNextNumber();
        double aperture = dialog.getNextNumber(), index = dialog.getNextNumber(), wavelength = dialog.getNextNumber();
        String csv = dialog.getNextString();
        boolean listPatches = dialog.getNextBoolean();
        // Only a .csv path: the table (and its _patches.csv) can then never overwrite an image being measured.
        if (!csv.trim().isEmpty() && !csv.trim().toLowerCase(Locale.ROOT).endsWith(".csv")) {
            fail("the table is saved as CSV: give a path that ends in .csv (not " + csv.trim() + ")");
            return;
        }
        try {
            Bundle bundle = Bundle.read(bundlePath);
            double[] micrometres = bundle.micrometres(wavelength, aperture, index);
            int threads = Math.max(1, Prefs.getThreads());
            Engine.Classifier network = patches -> bundle.network.predict(patches, threads);
            List<Engine.Result> results = new ArrayList<>();
            if (!folder.trim().isEmpty()) {
                results.addAll(measureFolder(new File(folder.trim()), bundle, pixelSize, scale, micrometres,
                        network));
            } else {
                ImagePlus image = IJ.getImage();
                results.addAll(measureImage(image, image.getTitle(), bundle, pixelSize, scale, micrometres, network));
                if (results.size() == 1 && image.getStackSize() == 1) image.setOverlay(overlay(results.get(0)));
            }
            for (Engine.Result result : results) if (!result.measured()) IJ.log("focusnet: " + result.message);
            List<String[]> rows = new ArrayList<>(), patchRows = new ArrayList<>();
            for (Engine.Result result : results) {
                rows.add(cells(result));
                if (result.measured()) patchRows.addAll(patchCells(result, bundle));
            }
            show(TABLE, COLUMNS, rows);
            if (listPatches) show(PATCH_TABLE, PATCH_COLUMNS, patchRows);
            if (!csv.trim().isEmpty()) {
                File file = new File(csv.trim());
                writeCsv(file, COLUMNS, rows);
                if (listPatches) {
                    String name = file.getName().replaceAll("(?i)\\.csv$", "");
                    writeCsv(new File(file.getAbsoluteFile().getParentFile(), name + "_patches.csv"), PATCH_COLUMNS,
                            patchRows);
                }
            }
        } catch (IllegalArgumentException | IOException e) {
            fail(e.getMessage());
        } catch (Exception e) {
            fail("focusnet could not finish: " + e);
        }
    }

    /** A message for the user: in the Log (and on stdout in batch mode), and as a dialog when interactive. */
    static void fail(String message) {
        IJ.log("focusnet: " + message);
        if (!Interpreter.isBatchMode() && !GraphicsEnvironment.isHeadless() && IJ.getInstance() != null)
            IJ.error("focusnet", message);
    }

    /** Every image of a folder (TIFF, PNG, JPEG), in name order; one that cannot be read gets a row with why. */
    public static List<Engine.Result> measureFolder(File folder, Bundle bundle, double pixelSize, double scale,
                                                    double[] micrometres, Engine.Classifier classifier)
            throws Exception {
        if (!folder.isDirectory()) throw new IllegalArgumentException(folder + ": no such folder");
        File[] files = folder.listFiles((dir, name) -> name.toLowerCase(Locale.ROOT).matches(".*\\.(tif|tiff|png|jpe?g)$"));
        Arrays.sort(files);
        List<Engine.Result> results = new ArrayList<>();
        for (File file : files) {
            ImagePlus image = null;
            try {
                image = IJ.openImage(file.getPath());
            } catch (RuntimeException e) {
                image = null;
            }
            if (image == null) {
                results.add(Engine.failed(new Engine.Result(file.getPath()), "image format",
                        "cannot be read as an image"));
            } else if (image.getStackSize() > 1) {
                results.add(Engine.failed(new Engine.Result(file.getPath()), "image format", "a stack of "
                        + image.getStackSize() + " planes; open it and measure it as the current image (one row "
                        + "per plane)"));
            } else {
                results.addAll(measureImage(image, file.getPath(), bundle, pixelSize, scale, micrometres, classifier));
            }
        }
        return results;
    }

    /** One row per plane of the image's current channel and time point (one row for a 2-D image). */
    public static List<Engine.Result> measureImage(ImagePlus image, String name, Bundle bundle, double pixelSize,
                                                   double scale, double[] micrometres, Engine.Classifier classifier)
            throws Exception {
        List<Engine.Result> results = new ArrayList<>();
        double size = Double.NaN;
        String source = "assumed";
        if (pixelSize > 0) {
            size = pixelSize;
            source = "given";
        } else {
            double stated = calibratedPixelSize(image.getCalibration());
            if (!Double.isNaN(stated)) {
                size = stated;
                source = "file";
            }
        }
        int planes = image.getNSlices();
        ImageStack stack = image.getStack();
        for (int z = 1; z <= planes; z++) {
            String plane = planes > 1 ? name + " plane " + (z - 1) : name;
            int index = image.getStackIndex(image.getChannel(), z, image.getFrame());
            ImageProcessor processor = planes > 1 || stack.getSize() > 1 ? stack.getProcessor(index)
                    : image.getProcessor();
            Engine.Result failure = new Engine.Result(plane);
            float[] counts;
            try {
                counts = counts(image.getBitDepth(), processor, scale);
            } catch (IllegalArgumentException e) {
                results.add(Engine.failed(failure, "image format", e.getMessage()));
                continue;
            }
            results.add(Engine.measure(plane, counts, processor.getWidth(), processor.getHeight(), bundle, size,
                    source, micrometres, classifier));
        }
        return results;
    }

    /**
     * Raw counts, by focusnet's rules: 8- and 16-bit pixels are counts as they are; 32-bit pixels need the
     * count that 1.0 stands for, and must then lie in [0, 65535]; colour is refused.
     */
    public static float[] counts(int bitDepth, ImageProcessor processor, double scale) {
        int n = processor.getWidth() * processor.getHeight();
        float[] counts = new float[n];
        if (bitDepth == 24)
            throw new IllegalArgumentException("RGB/colour image; focusnet measures one fluorescence channel");
        if (bitDepth == 32 && !(scale > 0))
            throw new IllegalArgumentException("floating-point pixels need an explicit scale (the count 1.0 stands "
                    + "for, e.g. 65535 for 16-bit or 4095 for 12-bit data) to recover raw counts");
        for (int i = 0; i < n; i++) {
            float value = bitDepth == 32 ? (float) (processor.getf(i) * scale) : processor.get(i);
            if (bitDepth == 32 && (!(value >= -0.5f) || value > FocusArithmetic.INPUT_SCALE + 0.5))
                throw new IllegalArgumentException("pixels times the scale " + scale + " give counts outside the raw "
                        + "counts [0, 65535] focusnet measures (or NaN)");
            counts[i] = bitDepth == 32 ? Math.max(0f, Math.min((float) FocusArithmetic.INPUT_SCALE, value)) : value;
        }
        return counts;
    }

    /** The pixel size in micrometres that a calibration states (NaN: none, or in no length unit). */
    public static double calibratedPixelSize(Calibration calibration) {
        if (calibration == null || !calibration.scaled()) return Double.NaN;
        String unit = calibration.getUnit().trim().toLowerCase(Locale.ROOT);
        double factor;
        switch (unit) {
            case "um": case "\u00b5m": case "\u03bcm": case "micron": case "microns": case "micrometer": case "micrometre":
                factor = 1;
                break;
            case "nm": case "nanometer": case "nanometre":
                factor = 1e-3;
                break;
            case "mm": case "millimeter": case "millimetre":
                factor = 1e3;
                break;
            default:
                return Double.NaN;
        }
        // Width and height averaged where they differ, as focusnet reads a TIFF's resolution.
        return (calibration.pixelWidth + calibration.pixelHeight) / 2 * factor;
    }

    /** The patches in focusnet's colours: hue by level (green in focus ... magenta), pale when uncertain. */
    public static Overlay overlay(Engine.Result result) {
        Overlay overlay = new Overlay();
        int patch = result.patchSize;
        for (int i = 0; i < result.probabilities.length; i++) {
            Roi roi = new Roi(result.xs[i % result.xs.length], result.ys[i / result.xs.length], patch, patch);
            if (result.judged[i]) {
                int level = FocusArithmetic.argmax(result.probabilities[i]);
                double certainty = FocusArithmetic.certainty(result.probabilities[i]);
                roi.setStrokeColor(levelColour(level, certainty));
                roi.setStrokeWidth(2);
            } else {
                roi.setStrokeColor(NOT_JUDGED);
                roi.setStrokeWidth(1);
            }
            overlay.add(roi);
        }
        return overlay;
    }

    /** focusnet.figures.level_colours: hue 1/3 - level / 20 (mod 1), saturation = certainty, full value. */
    public static Color levelColour(int level, double certainty) {
        double hue = 1.0 / 3.0 - 0.5 * level / (FocusArithmetic.LEVELS - 1);
        hue -= Math.floor(hue);
        return Color.getHSBColor((float) hue, (float) Math.max(0, Math.min(1, certainty)), 1f);
    }

    /** Text columns stay text; every other column is numeric ("nan": NaN). */
    public static void show(String title, String[] columns, List<String[]> rows) {
        ResultsTable table = new ResultsTable();
        for (String[] row : rows) {
            table.incrementCounter();
            for (int c = 0; c < columns.length; c++) {
                String column = columns[c];
                if (column.equals("image") || column.equals("pixel_size_source") || column.equals("reason"))
                    table.addValue(column, row[c]);
                else
                    table.addValue(column, row[c].equals("nan") ? Double.NaN : Double.parseDouble(row[c]));
            }
        }
        table.show(title);
    }

    /** Written whole: a temporary file beside the target, renamed into place. */
    public static void writeCsv(File file, String[] columns, List<String[]> rows) throws IOException {
        File parent = file.getAbsoluteFile().getParentFile();
        if (parent == null || !parent.isDirectory())
            throw new IOException(file + ": folder " + parent + " does not exist");
        File temporary = new File(parent, "." + file.getName() + ".partial");
        try (PrintWriter out = new PrintWriter(temporary, StandardCharsets.UTF_8.name())) {
            out.print(String.join(",", columns) + "\n");
            for (String[] row : rows) {
                String[] quoted = new String[row.length];
                for (int c = 0; c < row.length; c++) quoted[c] = quote(row[c]);
                out.print(String.join(",", quoted) + "\n");
            }
        }
        Files.move(temporary.toPath(), file.toPath(), StandardCopyOption.REPLACE_EXISTING,
                StandardCopyOption.ATOMIC_MOVE);
    }

    static String quote(String cell) {
        return cell.contains(",") || cell.contains("\"") ? "\"" + cell.replace("\"", "\"\"") + "\"" : cell;
    }

    /** One row's cells, in the order of {@link #COLUMNS}: numbers as Java prints doubles, NaN as "nan". */
    public static String[] cells(Engine.Result result) {
        List<String> cells = new ArrayList<>();
        cells.add(result.image);
        cells.add(number(result.level));
        cells.add(number(result.meanCertainty));
        cells.add(number(result.aggregateCertainty));
        for (double p : result.distribution) cells.add(number(p));
        cells.add(Integer.toString(result.patches));
        cells.add(number(result.contentFraction));
        cells.add(number(result.defocusUm));
        cells.add(number(result.lowerBound));
        cells.add(number(result.pixelSizeUm));
        cells.add(result.pixelSizeSource);
        cells.add(number(result.judgedFraction));
        cells.add(result.reason);
        return cells.toArray(new String[0]);
    }

    /**
     * One row per patch, row-major, in the order of {@link #PATCH_COLUMNS}: patches not judged have no level,
     * certainty, probabilities or distance (nan), as focusnet.records.patch_records.
     */
    public static List<String[]> patchCells(Engine.Result result, Bundle bundle) {
        List<String[]> rows = new ArrayList<>();
        int last = FocusArithmetic.LEVELS - 1;
        for (int i = 0; i < result.probabilities.length; i++) {
            double[] p = result.probabilities[i];
            boolean judged = result.judged[i];
            int level = FocusArithmetic.argmax(p);
            double expected = 0;
            for (int k = 0; k <= last; k++) expected += k * p[k];
            List<String> cells = new ArrayList<>();
            cells.add(result.image);
            cells.add(Integer.toString(i / result.xs.length));
            cells.add(Integer.toString(i % result.xs.length));
            cells.add(Integer.toString(result.ys[i / result.xs.length]));
            cells.add(Integer.toString(result.xs[i % result.xs.length]));
            cells.add(judged ? Integer.toString(level) : "nan");
            cells.add(judged ? number(FocusArithmetic.certainty(p)) : "nan");
            for (int k = 0; k <= last; k++) cells.add(judged ? number(p[k]) : "nan");
            cells.add(result.content[i] ? "1" : "0");
            cells.add(judged ? number(bundle.defocusUm(level == last ? last : expected, result.micrometres)) : "nan");
            cells.add(Integer.toString(result.patchSize));
            cells.add(judged ? (level == last ? "1" : "0") : "nan");
            cells.add(number(result.structureToNoise[i]));
            cells.add(judged ? "1" : "0");
            rows.add(cells.toArray(new String[0]));
        }
        return rows;
    }

    static String number(double value) {
        if (Double.isNaN(value)) return "nan";
        return value == Math.rint(value) && Math.abs(value) < 1e15 ? Long.toString((long) value)
                : Double.toString(value);
    }

    private static String[] patchColumns() {
        List<String> columns = new ArrayList<>(Arrays.asList("image", "row", "col", "y", "x", "defocus_level",
                "certainty"));
        for (int k = 0; k < FocusArithmetic.LEVELS; k++) columns.add("prob_" + k);
        columns.addAll(Arrays.asList("content", "defocus_um", "size", "defocus_um_lower_bound", "structure_to_noise",
                "judged"));
        return columns.toArray(new String[0]);
    }

    private static String[] columns() {
        List<String> columns = new ArrayList<>(Arrays.asList("image", "defocus_level", "mean_certainty",
                "aggregate_certainty"));
        for (int k = 0; k < FocusArithmetic.LEVELS; k++) columns.add("prob_" + k);
        columns.addAll(Arrays.asList("patches", "content_fraction", "defocus_um", "defocus_um_lower_bound",
                "pixel_size_um", "pixel_size_source", "judged_fraction", "reason"));
        return columns.toArray(new String[0]);
    }
}
