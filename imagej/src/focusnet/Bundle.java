package focusnet;

import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.io.File;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.zip.ZipEntry;
import java.util.zip.ZipFile;

/**
 * A checked focusnet bundle as the ImageJ plugin reads it: the manifest ({@code focusnet.json}) and the
 * plain-Java model ({@code imagej-model.properties}) whose SHA-256 the manifest records.
 *
 * <p>A bundle is the {@code .zip} that {@code focusnet export} writes, the same unzipped, or the shipped
 * model built into the plugin's jar. The TensorFlow SavedModel in it is for Fiji's own plugin and is
 * not read here.
 */
public final class Bundle {
    public static final String MANIFEST = "focusnet.json";
    public static final String MODEL = "imagej-model.properties";
    public static final String FORMAT = "focusnet-imagej-model";
    public static final int FORMAT_VERSION = 1;
    /** Where the jar holds the shipped model's manifest and ImageJ model. */
    static final String BUILT_IN = "/focusnet/default-bundle/";

    public final String name;
    public final Network network;
    public final double pixelSizeUm;
    public final double[] defocusLevels, defocusUm, targetBlur;
    /** The model's lens: the objective focusnet assumes where the user gives none. */
    public final double lensWavelengthUm, lensAperture, lensIndex;

    private Bundle(String name, byte[] manifest, byte[] model) {
        this.name = name;
        String manifestText = new String(manifest, StandardCharsets.UTF_8);
        if (!manifestText.contains("\"focusnet-bundle\""))
            throw new IllegalArgumentException(name + ": " + MANIFEST + " is not a focusnet bundle manifest");
        Matcher recorded = Pattern.compile("\"" + Pattern.quote(MODEL) + "\"\\s*:\\s*\"([0-9a-f]{64})\"")
                .matcher(manifestText);
        if (!recorded.find())
            throw new IllegalArgumentException(name + ": the manifest records no " + MODEL + " (exported by an "
                    + "earlier focusnet, or an architecture the ImageJ engine does not run); export the bundle again "
                    + "with this focusnet (focusnet export)");
        if (!recorded.group(1).equals(sha256(model)))
            throw new IllegalArgumentException(name + ": " + MODEL + " is damaged or modified (its SHA-256 differs "
                    + "from the one in " + MANIFEST + "); refusing to use it");
        Properties properties = new Properties();
        try {
            properties.load(new ByteArrayInputStream(model));
        } catch (IOException e) {
            throw new IllegalArgumentException(name + ": " + MODEL + " cannot be read (" + e.getMessage() + ")");
        }
        try {
            String format = Network.text(properties, "format");
            int version = Network.integer(properties, "format_version");
            if (!format.equals(FORMAT) || version != FORMAT_VERSION)
                throw new IllegalArgumentException("format " + format + " version " + version + " is not "
                        + FORMAT + " version " + FORMAT_VERSION + "; update the plugin or export the bundle again");
            network = new Network(properties);
            pixelSizeUm = Network.number(properties, "pixel_size_um");
            defocusLevels = numbers(properties, "defocus_um.levels");
            defocusUm = numbers(properties, "defocus_um.micrometres");
            targetBlur = numbers(properties, "defocus_um.target_blur");
            lensWavelengthUm = Network.number(properties, "objective.wavelength_um");
            lensAperture = Network.number(properties, "objective.numerical_aperture");
            lensIndex = Network.number(properties, "objective.refractive_index");
        } catch (IllegalArgumentException e) {
            throw new IllegalArgumentException(name + ": " + MODEL + ": " + e.getMessage());
        }
    }

    /**
     * Read and check a bundle: a {@code .zip}, an unzipped bundle folder, or null/empty for the shipped model.
     *
     * @throws IllegalArgumentException with a message for the user: missing, damaged, modified or not a bundle
     */
    public static Bundle read(String path) {
        if (path == null || path.trim().isEmpty()) return builtIn();
        File file = new File(path.trim());
        try {
            if (file.isDirectory())
                return new Bundle(file.getPath(), readFile(new File(file, MANIFEST), file),
                        readFile(new File(file, MODEL), file));
            if (!file.isFile()) throw new IllegalArgumentException(file + ": no such bundle (.zip or folder)");
            try (ZipFile zip = new ZipFile(file)) {
                return new Bundle(file.getPath(), entry(zip, MANIFEST, file), entry(zip, MODEL, file));
            }
        } catch (IOException e) {
            throw new IllegalArgumentException(file + ": cannot be read as a bundle (" + e.getMessage() + ")");
        }
    }

    /** The shipped model, built into the plugin's jar. */
    public static Bundle builtIn() {
        return new Bundle("the shipped model", resource(MANIFEST), resource(MODEL));
    }

    /**
     * The micrometres of each level of {@link #defocusLevels} for an objective (NaN or 0: the model's lens for
     * that value), as focusnet.defocus.defocus_scale; the model's lens itself is the bundle's table.
     *
     * @throws IllegalArgumentException for values that are not positive, or an aperture not below the index
     */
    public double[] micrometres(double wavelengthUm, double aperture, double index) {
        double wavelength = wavelengthUm > 0 ? wavelengthUm : lensWavelengthUm;
        double na = aperture > 0 ? aperture : lensAperture, n = index > 0 ? index : lensIndex;
        if (!(na < n))
            throw new IllegalArgumentException("the numerical aperture " + na + " must be below the immersion index "
                    + n);
        if (wavelength == lensWavelengthUm && na == lensAperture && n == lensIndex) return defocusUm;
        return Defocus.micrometres(targetBlur, wavelength, na, n);
    }

    /** Micrometres from focus for a (fractional) level: the table for the objective, interpolated. */
    public double defocusUm(double level, double[] micrometres) {
        return Defocus.interp(level, defocusLevels, micrometres);
    }

    private static double[] numbers(Properties properties, String key) {
        String[] parts = Network.text(properties, key).split(",");
        double[] values = new double[parts.length];
        for (int i = 0; i < parts.length; i++) values[i] = Double.parseDouble(parts[i].trim());
        return values;
    }

    private static byte[] readFile(File file, File bundle) throws IOException {
        if (!file.isFile()) throw new IllegalArgumentException(bundle + ": not a focusnet bundle (no " + file.getName()
                + ")");
        return Files.readAllBytes(file.toPath());
    }

    private static byte[] entry(ZipFile zip, String name, File bundle) throws IOException {
        ZipEntry entry = zip.getEntry(name);
        if (entry == null) throw new IllegalArgumentException(bundle + ": not a focusnet bundle (no " + name + ")");
        try (InputStream stream = zip.getInputStream(entry)) {
            return readAll(stream);
        }
    }

    private static byte[] resource(String name) {
        try (InputStream stream = Bundle.class.getResourceAsStream(BUILT_IN + name)) {
            if (stream == null) throw new IllegalArgumentException("the plugin's jar holds no shipped model (" + name
                    + "); give a bundle");
            return readAll(stream);
        } catch (IOException e) {
            throw new IllegalArgumentException("the shipped model cannot be read from the jar (" + e.getMessage() + ")");
        }
    }

    private static byte[] readAll(InputStream stream) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        byte[] buffer = new byte[1 << 16];
        for (int read; (read = stream.read(buffer)) > 0; ) out.write(buffer, 0, read);
        return out.toByteArray();
    }

    static String sha256(byte[] data) {
        try {
            StringBuilder hex = new StringBuilder();
            for (byte b : MessageDigest.getInstance("SHA-256").digest(data)) hex.append(String.format("%02x", b));
            return hex.toString();
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }
}
