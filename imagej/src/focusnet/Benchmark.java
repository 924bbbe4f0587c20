package focusnet;

import ij.IJ;
import ij.ImagePlus;

/**
 * Seconds per image of the Java engine, for benchmarks/imagej_engine.py: the shipped model loaded once,
 * each image measured once to warm up, then {@code repeats} times; prints "path seconds" per image.
 *
 * <p>{@code java -Djava.awt.headless=true -cp ij.jar:focusnet_.jar focusnet.Benchmark REPEATS THREADS IMAGE...}
 */
public final class Benchmark {
    private Benchmark() {
    }

    public static void main(String[] args) throws Exception {
        int repeats = Integer.parseInt(args[0]), threads = Integer.parseInt(args[1]);
        Bundle bundle = Bundle.builtIn();
        for (int a = 2; a < args.length; a++) {
            ImagePlus image = IJ.openImage(args[a]);
            float[] counts = Measure_Focus.counts(image.getBitDepth(), image.getProcessor(), 0);
            int width = image.getWidth(), height = image.getHeight();
            Engine.measure(args[a], counts, width, height, bundle, Double.NaN, "assumed", bundle.defocusUm, threads);
            double best = Double.POSITIVE_INFINITY;
            for (int r = 0; r < repeats; r++) {
                long start = System.nanoTime();
                Engine.measure(args[a], counts, width, height, bundle, Double.NaN, "assumed", bundle.defocusUm, threads);
                best = Math.min(best, (System.nanoTime() - start) / 1e9);
            }
            System.out.println(args[a] + " " + best);
        }
    }
}
