package focusnet;

/**
 * Resampling to the model's pixel size as focusnet.inference.resample_to_model_pixels does it
 * (scikit-image's {@code rescale(order=1, mode="reflect", anti_aliasing=zoom < 1, preserve_range=True)}):
 * the output is round(size x zoom) pixels a side; when shrinking, a Gaussian of sigma (in / out - 1) / 2
 * per axis first (scipy's, truncated at 4 sigma, mirrored edges); then bilinear interpolation at
 * (out + 0.5) x in / out - 0.5, reflected at the edges.
 */
public final class Resample {
    private Resample() {
    }

    /** The resampled image; {@code shape[0]} and {@code shape[1]} receive its height and width. */
    public static float[] rescale(float[] image, int width, int height, double zoom, int[] shape) {
        int outHeight = (int) Math.max(Math.rint(height * zoom), 1), outWidth = (int) Math.max(Math.rint(width * zoom), 1);
        double rowFactor = height / (double) outHeight, colFactor = width / (double) outWidth;
        float[] source = image;
        if (zoom < 1) {
            source = gaussian(image, width, height, Math.max(0, (rowFactor - 1) / 2), true);
            source = gaussian(source, width, height, Math.max(0, (colFactor - 1) / 2), false);
        }
        float[] out = new float[outWidth * outHeight];
        for (int r = 0; r < outHeight; r++) {
            double y = (r + 0.5) * rowFactor - 0.5;
            for (int c = 0; c < outWidth; c++) {
                double x = (c + 0.5) * colFactor - 0.5;
                out[r * outWidth + c] = (float) bilinear(source, width, height, y, x);
            }
        }
        shape[0] = outHeight;
        shape[1] = outWidth;
        return out;
    }

    private static double bilinear(float[] image, int width, int height, double y, double x) {
        int y0 = (int) Math.floor(y), x0 = (int) Math.floor(x);
        double dy = y - y0, dx = x - x0;
        double top = (1 - dx) * pixel(image, width, height, y0, x0) + dx * pixel(image, width, height, y0, x0 + 1);
        double bottom = (1 - dx) * pixel(image, width, height, y0 + 1, x0)
                + dx * pixel(image, width, height, y0 + 1, x0 + 1);
        return (1 - dy) * top + dy * bottom;
    }

    private static float pixel(float[] image, int width, int height, int y, int x) {
        return image[reflect(y, height) * width + reflect(x, width)];
    }

    /** numpy's "reflect" (scipy's "mirror"): ... c b | a b c d | c b ..., the edge pixel not repeated. */
    static int reflect(int index, int size) {
        if (size == 1) return 0;
        int period = 2 * (size - 1);
        index = Math.floorMod(index, period);
        return index < size ? index : period - index;
    }

    /** scipy.ndimage's Gaussian kernel: exp(-x^2 / 2 sigma^2), normalised, radius int(4 sigma + 0.5). */
    static double[] kernel(double sigma) {
        int radius = (int) (4.0 * sigma + 0.5);
        double[] weights = new double[2 * radius + 1];
        double sum = 0;
        for (int i = -radius; i <= radius; i++) sum += weights[i + radius] = Math.exp(-0.5 * i * i / (sigma * sigma));
        for (int i = 0; i < weights.length; i++) weights[i] /= sum;
        return weights;
    }

    /** scipy.ndimage.gaussian_filter1d along the rows ({@code vertical}) or the columns, mirrored edges. */
    private static float[] gaussian(float[] image, int width, int height, double sigma, boolean vertical) {
        if (sigma <= 0) return image;
        double[] weights = kernel(sigma);
        int radius = weights.length / 2;
        float[] out = new float[image.length];
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++) {
                double sum = 0;
                for (int k = -radius; k <= radius; k++) {
                    int source = vertical ? reflect(y + k, height) * width + x : y * width + reflect(x + k, width);
                    sum += weights[k + radius] * image[source];
                }
                out[y * width + x] = (float) sum;
            }
        return out;
    }
}
