package focusnet;

/**
 * Levels as micrometres of defocus of the user's objective, as focusnet.defocus.defocus_scale computes them
 * for a widefield lens: the distance at which the objective's Born &amp; Wolf PSF (exact defocus phase) has
 * the defocus blur of the model's level, the blur being the diameter of the circle holding 84 % of the
 * PSF's energy, beyond the in-focus spot (added in quadrature).
 *
 * <p>The model's side (its blur per level) comes with the bundle ({@code defocus_um.target_blur}); the
 * objective's side is computed here: the PSF by Gauss-Legendre quadrature of the pupil integral, with
 * J0 from its rational and asymptotic approximations (absolute error about 1e-8).
 */
public final class Defocus {
    /** Energy fraction whose circle's diameter measures blur (focusnet.defocus.BLUR_ENERGY_FRACTION). */
    static final double BLUR_ENERGY_FRACTION = 0.84;

    private Defocus() {
    }

    /**
     * Micrometres of defocus of the objective for each level of the grid whose model blur is {@code target}.
     *
     * @param target     the model's defocus blur (um) at each level of the grid, increasing
     * @param wavelength emission wavelength (um)
     * @param aperture   numerical aperture
     * @param index      immersion refractive index
     */
    public static double[] micrometres(double[] target, double wavelength, double aperture, double index) {
        int last = target.length - 1;
        double reach = target[last] / (2.0 * aperture / index) + wavelength;
        double[] z, blur;
        while (true) {
            z = linspace(reach, 301);
            double[] diameter = blurDiameter(z, wavelength, aperture, index);
            blur = new double[z.length];
            double running = 0;
            for (int i = 0; i < z.length; i++) {
                running = Math.max(running, Math.sqrt(Math.max(diameter[i] * diameter[i]
                        - diameter[0] * diameter[0], 0.0)));
                blur[i] = running;
            }
            if (blur[blur.length - 1] >= target[last]) break;
            reach *= 1.5;
        }
        double[] micrometres = new double[target.length];
        double running = 0;
        for (int i = 0; i < target.length; i++) {
            double value = i == 0 ? 0.0 : interp(target[i], blur, z);
            running = Math.max(running, value);
            micrometres[i] = running;
        }
        return micrometres;
    }

    /** Diameters (um) of the circles holding 84 % of the objective's PSF at each defocus (focusnet's search). */
    static double[] blurDiameter(double[] defocus, double wavelength, double aperture, double index) {
        double sine = aperture / index, largest = 0;
        for (double z : defocus) largest = Math.max(largest, Math.abs(z));
        double geometric = largest * sine / Math.sqrt(1.0 - sine * sine);
        double step = wavelength / 25.0;
        double outer = 2.0 * (geometric + 3.0 * wavelength / aperture) + step;
        while (true) {
            int count = (int) Math.ceil((outer + step) / step);
            double[] radius = new double[count];
            for (int j = 0; j < count; j++) radius[j] = j * step;
            double[][] energy = encircledEnergy(radius, psf(radius, defocus, wavelength, aperture, index));
            boolean enough = true;
            for (double value : energy[count - 1]) enough &= value >= BLUR_ENERGY_FRACTION;
            if (enough) {
                double[] diameters = new double[defocus.length];
                double[] column = new double[count];
                for (int i = 0; i < defocus.length; i++) {
                    for (int j = 0; j < count; j++) column[j] = energy[j][i];
                    diameters[i] = 2.0 * interp(BLUR_ENERGY_FRACTION, column, radius);
                }
                return diameters;
            }
            outer *= 1.5;
        }
    }

    /** The trapezoidal integral of PSF x 2 pi r dr from the axis outwards, [radius][defocus]. */
    static double[][] encircledEnergy(double[] radius, double[][] profile) {
        int zs = profile[0].length;
        double[][] energy = new double[radius.length][zs];
        for (int j = 1; j < radius.length; j++)
            for (int i = 0; i < zs; i++)
                energy[j][i] = energy[j - 1][i] + 0.5 * (profile[j][i] * 2 * Math.PI * radius[j]
                        + profile[j - 1][i] * 2 * Math.PI * radius[j - 1]) * (radius[j] - radius[j - 1]);
        return energy;
    }

    /** focusnet.optics.psf_profile with the exact defocus phase and a uniform pupil: [radius][defocus]. */
    static double[][] psf(double[] radius, double[] defocus, double wavelength, double aperture, double index) {
        double wavenumber = 2.0 * Math.PI * index / wavelength, a = wavenumber * aperture / index;
        double sine = aperture / index, largestRadius = 0, largestDefocus = 0;
        for (double r : radius) largestRadius = Math.max(largestRadius, r);
        for (double z : defocus) largestDefocus = Math.max(largestDefocus, Math.abs(z));
        double highest = a * largestRadius + wavenumber * pathDifference(sine, 1.0) * largestDefocus;
        double[][] nodes = gaussLegendre((int) (highest / 2) + 64);
        double[] rho = nodes[0], weights = nodes[1];
        int n = rho.length;
        double[][] bessel = new double[radius.length][n];
        for (int r = 0; r < radius.length; r++)
            for (int k = 0; k < n; k++) bessel[r][k] = j0(radius[r] * a * rho[k]);
        double[][] intensity = new double[radius.length][defocus.length];
        double[] real = new double[n], imaginary = new double[n];
        for (int i = 0; i < defocus.length; i++) {
            for (int k = 0; k < n; k++) {
                double phase = wavenumber * pathDifference(sine, rho[k]) * defocus[i];
                // exp(-i phase) times the pupil's weight rho dw.
                real[k] = Math.cos(phase) * rho[k] * weights[k];
                imaginary[k] = -Math.sin(phase) * rho[k] * weights[k];
            }
            for (int r = 0; r < radius.length; r++) {
                double re = 0, im = 0;
                double[] row = bessel[r];
                for (int k = 0; k < n; k++) {
                    re += row[k] * real[k];
                    im += row[k] * imaginary[k];
                }
                intensity[r][i] = a * a / Math.PI * (re * re + im * im);
            }
        }
        return intensity;
    }

    /** Optical path difference per um of defocus at relative pupil radius rho: 1 - sqrt(1 - s^2), precisely. */
    static double pathDifference(double sine, double rho) {
        double s = sine * rho;
        return s * s / (1.0 + Math.sqrt(1.0 - s * s));
    }

    /** Gauss-Legendre nodes and weights on [0, 1] (numpy's leggauss, mapped). */
    static double[][] gaussLegendre(int count) {
        double[] nodes = new double[count], weights = new double[count];
        for (int i = 0; i < (count + 1) / 2; i++) {
            double z = Math.cos(Math.PI * (i + 0.75) / (count + 0.5)), derivative;
            while (true) {
                double p1 = 1, p2 = 0;
                for (int j = 1; j <= count; j++) {
                    double p3 = p2;
                    p2 = p1;
                    p1 = ((2.0 * j - 1.0) * z * p2 - (j - 1.0) * p3) / j;
                }
                derivative = count * (z * p1 - p2) / (z * z - 1.0);
                double previous = z;
                z = previous - p1 / derivative;
                if (Math.abs(z - previous) <= 1e-15) break;
            }
            double weight = 2.0 / ((1.0 - z * z) * derivative * derivative);
            nodes[i] = (1.0 - z) / 2.0;
            nodes[count - 1 - i] = (1.0 + z) / 2.0;
            weights[i] = weights[count - 1 - i] = weight / 2.0;
        }
        return new double[][] {nodes, weights};
    }

    /** Bessel J0 (Numerical Recipes' bessj0). */
    static double j0(double x) {
        double ax = Math.abs(x);
        if (ax < 8.0) {
            double y = x * x;
            double numerator = 57568490574.0 + y * (-13362590354.0 + y * (651619640.7 + y * (-11214424.18
                    + y * (77392.33017 + y * (-184.9052456)))));
            double denominator = 57568490411.0 + y * (1029532985.0 + y * (9494680.718 + y * (59272.64853
                    + y * (267.8532712 + y))));
            return numerator / denominator;
        }
        double z = 8.0 / ax, y = z * z, xx = ax - 0.785398164;
        double p = 1.0 + y * (-0.1098628627e-2 + y * (0.2734510407e-4 + y * (-0.2073370639e-5
                + y * 0.2093887211e-6)));
        double q = -0.1562499995e-1 + y * (0.1430488765e-3 + y * (-0.6911147651e-5 + y * (0.7621095161e-6
                - y * 0.934935152e-7)));
        return Math.sqrt(0.636619772 / ax) * (Math.cos(xx) * p - z * Math.sin(xx) * q);
    }

    static double[] linspace(double stop, int count) {
        double[] values = new double[count];
        for (int i = 0; i < count; i++) values[i] = stop * i / (count - 1);
        return values;
    }

    /** numpy.interp: linear between the points of increasing xp, clamped at the ends. */
    static double interp(double x, double[] xp, double[] fp) {
        int last = xp.length - 1;
        if (x <= xp[0]) return fp[0];
        if (x >= xp[last]) return fp[last];
        int lo = 0, hi = last;
        while (hi - lo > 1) {
            int mid = (lo + hi) >>> 1;
            if (xp[mid] <= x) lo = mid;
            else hi = mid;
        }
        double width = xp[hi] - xp[lo];
        return width == 0 ? fp[hi] : fp[lo] + (fp[hi] - fp[lo]) * (x - xp[lo]) / width;
    }
}
