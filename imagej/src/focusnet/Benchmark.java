package focusnet;

import ij.IJ;
import ij.ImagePlus;

/**
 * Seconds per image of the Java engine, for benchmarks/imagej_engine.py: the shipped model loaded once; each
 * image measured once (the first image's time includes the JIT compiling the engine), then {@value #WARM_UP}
 * times more (warm: what every image of a folder or a stack after the first few costs), then {@code repeats}
 * times; prints "path first-seconds best-seconds" per image.
 *
 * <p>{@code java -Djava.awt.headless=true -cp ij.jar:focusnet_.jar focusnet.Benchmark REPEATS THREADS IMAGE...}
 */
public final class Benchmark {
    /** Runs between the first and the timed ones: enough for the JIT to compile the engine's loops. */
    static final int WARM_UP = 30;

    private Benchmark() {
    }

    private static double seconds(String name, float[] counts, int width, int height, Bundle bundle, int threads)
            throws Exception {
        long start = System.nanoTime();
        Engine.measure(name, counts, width, height, bundle, Double.NaN, "assumed", bundle.defocusUm, threads);
        return (System.nanoTime() - start) / 1e9;
    }

    public static void main(String[] args) throws Exception {
        int repeats = Integer.parseInt(args[0]), threads = Integer.parseInt(args[1]);
        Bundle bundle = Bundle.builtIn();
        for (int a = 2; a < args.length; a++) {
            ImagePlus image = IJ.openImage(args[a]);
            float[] counts = Measure_Focus.counts(image.getBitDepth(), image.getProcessor(), 0);
            int width = image.getWidth(), height = image.getHeight();
            double first = seconds(args[a], counts, width, height, bundle, threads);
            for (int w = 0; w < WARM_UP; w++) seconds(args[a], counts, width, height, bundle, threads);
            double best = Double.POSITIVE_INFINITY;
            for (int r = 0; r < repeats; r++) best = Math.min(best, seconds(args[a], counts, width, height, bundle, threads));
            System.out.println(args[a] + " " + first + " " + best);
        }
    }
}
