package dev.ambient.model.eval;

import dev.ambient.model.annotate.Annotation;
import dev.ambient.model.annotate.FirstConfusionRule;
import dev.ambient.model.data.Images;
import java.awt.BasicStroke;
import java.awt.Color;
import java.awt.Font;
import java.awt.Paint;
import java.awt.image.BufferedImage;
import java.io.IOException;
import java.text.DecimalFormat;
import java.text.DecimalFormatSymbols;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Objects;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.renderer.xy.StandardXYBarPainter;
import org.jfree.chart.renderer.xy.XYBarRenderer;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.chart.title.TextTitle;
import org.jfree.data.xy.XYIntervalSeries;
import org.jfree.data.xy.XYIntervalSeriesCollection;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * The evaluation's figures as PNG files, drawn with JFreeChart: metrics against training images
 * seen, the noise classifier's probability trajectories with the σ_min each one gave, and the
 * histogram of annotation values. Every input is checked before anything is drawn, and a file is
 * written through a temporary file and a rename ({@link Images#writePng}).
 *
 * <p>Drawing needs no display: the charts are rendered into a {@link BufferedImage}. On a
 * machine without one the JDK must run headless; this class sets {@code java.awt.headless=true}
 * when it is loaded unless the property was set already, which takes effect as long as nothing
 * has touched AWT's toolkit before (programs that also open windows should set the property
 * themselves, either way, before their first AWT call).
 */
public final class Plots {

    static {
        if (System.getProperty("java.awt.headless") == null) System.setProperty("java.awt.headless", "true");
    }

    /** Width and height in pixels of the figures when none are given. */
    public static final int DEFAULT_WIDTH = 900, DEFAULT_HEIGHT = 600;

    /** Distinct colours that stay apart in print; series beyond them cycle. */
    private static final Color[] PALETTE = {
        new Color(0x1f77b4), new Color(0xd62728), new Color(0x2ca02c), new Color(0xff7f0e),
        new Color(0x9467bd), new Color(0x8c564b), new Color(0xe377c2), new Color(0x17becf),
        new Color(0x7f7f7f), new Color(0xbcbd22),
    };

    private Plots() {}

    /** One line of a line plot: its legend name and its points, {@code x} and {@code y} of equal length. */
    public record Series(String name, double[] x, double[] y) {
        public Series {
            Objects.requireNonNull(name, "series name");
            Objects.requireNonNull(x, "x of " + name);
            Objects.requireNonNull(y, "y of " + name);
            if (x.length != y.length) throw new IllegalArgumentException("series '" + name + "' has " + x.length + " x values and " + y.length + " y values");
            if (x.length == 0) throw new IllegalArgumentException("series '" + name + "' has no points");
            for (int i = 0; i < x.length; i++) {
                if (!Double.isFinite(x[i]) || !Double.isFinite(y[i])) throw new IllegalArgumentException("series '" + name + "' point " + i + " is (" + x[i] + ", " + y[i] + ")");
            }
            x = x.clone();
            y = y.clone();
        }
    }

    /**
     * One classifier probability trajectory: P(corrupted) (averaged over trials) at each sigma of
     * the grid, and the σ_min chosen from it.
     */
    public record Trajectory(String name, double[] sigmas, double[] probabilities, double sigmaMin) {
        public Trajectory {
            Objects.requireNonNull(name, "trajectory name");
            Objects.requireNonNull(sigmas, "sigmas of " + name);
            Objects.requireNonNull(probabilities, "probabilities of " + name);
            if (sigmas.length != probabilities.length) throw new IllegalArgumentException("trajectory '" + name + "' has " + sigmas.length + " sigmas and " + probabilities.length + " probabilities");
            if (sigmas.length == 0) throw new IllegalArgumentException("trajectory '" + name + "' has no points");
            for (int i = 0; i < sigmas.length; i++) {
                if (!(sigmas[i] > 0) || Double.isInfinite(sigmas[i])) throw new IllegalArgumentException("trajectory '" + name + "': sigma " + i + " is " + sigmas[i] + "; a log axis needs positive sigmas");
                if (!(probabilities[i] >= 0 && probabilities[i] <= 1)) throw new IllegalArgumentException("trajectory '" + name + "': probability " + i + " is " + probabilities[i] + ", not in [0, 1]");
            }
            if (!(sigmaMin > 0) || Double.isInfinite(sigmaMin)) throw new IllegalArgumentException("trajectory '" + name + "': sigma_min is " + sigmaMin + "; a log axis needs a positive one");
            sigmas = sigmas.clone();
            probabilities = probabilities.clone();
        }
    }

    /**
     * Trajectories from the annotation file's records: the mean over trials at each sigma of
     * {@code sortedSigmas}, with σ_min from {@code rule}.
     */
    public static List<Trajectory> trajectories(List<Annotation.Trajectory> records, double[] sortedSigmas, FirstConfusionRule rule) {
        Objects.requireNonNull(records, "records");
        Objects.requireNonNull(sortedSigmas, "sortedSigmas");
        Objects.requireNonNull(rule, "rule");
        List<Trajectory> out = new ArrayList<>(records.size());
        for (Annotation.Trajectory t : records) {
            double sigmaMin = rule.sigmaMin(t, sortedSigmas);
            double[] p = new double[t.sigmaCount()];
            for (int k = 0; k < p.length; k++) p[k] = t.mean(k);
            out.add(new Trajectory(t.filename(), sortedSigmas, p, sigmaMin));
        }
        return out;
    }

    /**
     * A line plot of one or more series, e.g. FD against training images seen for each method,
     * with a linear or logarithmic y axis.
     */
    public static void lineChart(Path file, String title, String xLabel, String yLabel, List<Series> series, boolean logY, int width, int height) throws IOException {
        Objects.requireNonNull(file, "file");
        checkSize(width, height);
        checkNonEmpty(series, "series");
        checkUniqueNames(series.stream().map(Series::name).toList());
        XYSeriesCollection data = new XYSeriesCollection();
        for (Series s : series) {
            XYSeries xy = new XYSeries(s.name(), false, true);
            for (int i = 0; i < s.x().length; i++) {
                if (logY && !(s.y()[i] > 0)) throw new IllegalArgumentException("series '" + s.name() + "' point " + i + " has y = " + s.y()[i] + "; a log axis needs positive values");
                xy.add(s.x()[i], s.y()[i]);
            }
            data.addSeries(xy);
        }
        JFreeChart chart = ChartFactory.createXYLineChart(title, xLabel, yLabel, data, PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        style(chart);
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
        for (int i = 0; i < series.size(); i++) {
            renderer.setSeriesPaint(i, colour(i));
            renderer.setSeriesStroke(i, new BasicStroke(2f));
        }
        plot.setRenderer(renderer);
        NumberAxis x = (NumberAxis) plot.getDomainAxis();
        x.setAutoRangeIncludesZero(false);
        if (logY) {
            plot.setRangeAxis(logAxis(yLabel));
        } else {
            ((NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(false);
        }
        write(chart, file, width, height);
    }

    /** {@link #lineChart} at the default size with a linear y axis. */
    public static void lineChart(Path file, String title, String xLabel, String yLabel, List<Series> series) throws IOException {
        lineChart(file, title, xLabel, yLabel, series, false, DEFAULT_WIDTH, DEFAULT_HEIGHT);
    }

    /**
     * Probability against sigma on a logarithmic sigma axis, one line per trajectory, with a dashed
     * vertical marker in the trajectory's colour at its σ_min, and the 0.5 line where the
     * classifier is confused.
     */
    public static void trajectoryChart(Path file, String title, List<Trajectory> trajectories, int width, int height) throws IOException {
        Objects.requireNonNull(file, "file");
        checkSize(width, height);
        checkNonEmpty(trajectories, "trajectories");
        checkUniqueNames(trajectories.stream().map(Trajectory::name).toList());
        XYSeriesCollection data = new XYSeriesCollection();
        for (Trajectory t : trajectories) {
            XYSeries xy = new XYSeries(t.name(), false, true);
            for (int i = 0; i < t.sigmas().length; i++) xy.add(t.sigmas()[i], t.probabilities()[i]);
            data.addSeries(xy);
        }
        JFreeChart chart = ChartFactory.createXYLineChart(title, "sigma", "P(corrupted)", data, PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        style(chart);
        plot.setDomainAxis(logAxis("sigma (log scale)"));
        NumberAxis p = (NumberAxis) plot.getRangeAxis();
        p.setRange(-0.02, 1.02);
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, false);
        BasicStroke dashed = new BasicStroke(1.5f, BasicStroke.CAP_BUTT, BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f);
        for (int i = 0; i < trajectories.size(); i++) {
            Color c = colour(i);
            renderer.setSeriesPaint(i, c);
            renderer.setSeriesStroke(i, new BasicStroke(2f));
            plot.addDomainMarker(new ValueMarker(trajectories.get(i).sigmaMin(), c, dashed));
        }
        plot.addRangeMarker(new ValueMarker(0.5, Color.GRAY, new BasicStroke(1f)));
        plot.setRenderer(renderer);
        chart.addSubtitle(new TextTitle("dashed: the sigma_min chosen from each trajectory", new Font(Font.SANS_SERIF, Font.PLAIN, 12)));
        write(chart, file, width, height);
    }

    /** {@link #trajectoryChart} at the default size. */
    public static void trajectoryChart(Path file, String title, List<Trajectory> trajectories) throws IOException {
        trajectoryChart(file, title, trajectories, DEFAULT_WIDTH, DEFAULT_HEIGHT);
    }

    /**
     * A histogram of annotation values (e.g. σ_min) in {@code bins} equal bins, on a linear axis or
     * in log-spaced bins on a logarithmic one. A log axis cannot show 0 (clean samples have
     * σ_min = 0): values ≤ 0 are then left out and their number is said in a subtitle.
     */
    public static void histogram(Path file, String title, String xLabel, double[] values, int bins, boolean logX, int width, int height) throws IOException {
        Objects.requireNonNull(file, "file");
        Objects.requireNonNull(values, "values");
        checkSize(width, height);
        if (bins < 1) throw new IllegalArgumentException("bins must be >= 1, got " + bins);
        int left = 0;
        double lo = Double.POSITIVE_INFINITY, hi = Double.NEGATIVE_INFINITY;
        for (int i = 0; i < values.length; i++) {
            double v = values[i];
            if (!Double.isFinite(v)) throw new IllegalArgumentException("value " + i + " is " + v);
            if (logX && v <= 0) {
                left++;
                continue;
            }
            double t = logX ? Math.log10(v) : v;
            lo = Math.min(lo, t);
            hi = Math.max(hi, t);
        }
        if (values.length - left == 0) {
            throw new IllegalArgumentException(values.length == 0 ? "no values to draw" : "all " + values.length + " values are <= 0; a log axis cannot show them (use a linear one)");
        }
        if (hi == lo) { // one distinct value: a single bar of unit width around it
            lo -= 0.5;
            hi += 0.5;
        }
        double w = (hi - lo) / bins;
        long[] counts = new long[bins];
        for (double v : values) {
            if (logX && v <= 0) continue;
            double t = logX ? Math.log10(v) : v;
            counts[Math.min(bins - 1, (int) ((t - lo) / w))]++;
        }
        XYIntervalSeries bars = new XYIntervalSeries("count");
        for (int b = 0; b < bins; b++) {
            double a = lo + b * w, z = lo + (b + 1) * w;
            double x0 = logX ? Math.pow(10, a) : a, x1 = logX ? Math.pow(10, z) : z;
            double mid = logX ? Math.pow(10, 0.5 * (a + z)) : 0.5 * (a + z);
            bars.add(mid, x0, x1, counts[b], 0, counts[b]);
        }
        XYIntervalSeriesCollection data = new XYIntervalSeriesCollection();
        data.addSeries(bars);
        JFreeChart chart = ChartFactory.createXYBarChart(title, xLabel, false, "count", data, PlotOrientation.VERTICAL, false, false, false);
        XYPlot plot = chart.getXYPlot();
        style(chart);
        XYBarRenderer renderer = new XYBarRenderer();
        renderer.setBarPainter(new StandardXYBarPainter());
        renderer.setShadowVisible(false);
        renderer.setDrawBarOutline(true);
        renderer.setSeriesPaint(0, colour(0));
        renderer.setSeriesOutlinePaint(0, Color.WHITE);
        plot.setRenderer(renderer);
        if (logX) {
            plot.setDomainAxis(logAxis(xLabel + " (log scale)"));
        }
        String note = values.length + " values" + (left > 0 ? ", " + left + " at <= 0 (e.g. clean, sigma_min = 0) not shown" : "");
        chart.addSubtitle(new TextTitle(note, new Font(Font.SANS_SERIF, Font.PLAIN, 12)));
        write(chart, file, width, height);
    }

    /** {@link #histogram} at the default size. */
    public static void histogram(Path file, String title, String xLabel, double[] values, int bins, boolean logX) throws IOException {
        histogram(file, title, xLabel, values, bins, logX, DEFAULT_WIDTH, DEFAULT_HEIGHT);
    }

    private static void style(JFreeChart chart) {
        chart.setBackgroundPaint(Color.WHITE);
        XYPlot plot = chart.getXYPlot();
        plot.setBackgroundPaint(Color.WHITE);
        Paint grid = new Color(0xdddddd);
        plot.setDomainGridlinePaint(grid);
        plot.setRangeGridlinePaint(grid);
    }

    /** A log axis with ticks at whole powers of ten, labelled as plain numbers (0.01, 1, 100). */
    private static LogAxis logAxis(String label) {
        LogAxis axis = new LogAxis(label);
        axis.setSmallestValue(1e-300);
        axis.setStandardTickUnits(NumberAxis.createIntegerTickUnits()); // tick units are exponents
        axis.setNumberFormatOverride(new DecimalFormat("0.##########", DecimalFormatSymbols.getInstance(Locale.ROOT)));
        return axis;
    }

    private static Color colour(int i) { return PALETTE[i % PALETTE.length]; }

    private static void write(JFreeChart chart, Path file, int width, int height) throws IOException {
        BufferedImage img = chart.createBufferedImage(width, height, BufferedImage.TYPE_INT_RGB, null);
        Images.writePng(img, file);
    }

    private static void checkSize(int width, int height) {
        // below this the axes and legend no longer fit; above it the image is a memory accident
        if (width < 100 || height < 100 || width > 10_000 || height > 10_000) {
            throw new IllegalArgumentException("figure size must be within 100..10000 pixels each way, got " + width + "x" + height);
        }
    }

    private static void checkNonEmpty(List<?> list, String what) {
        Objects.requireNonNull(list, what);
        if (list.isEmpty()) throw new IllegalArgumentException("no " + what + " to draw");
        for (int i = 0; i < list.size(); i++) Objects.requireNonNull(list.get(i), what + "[" + i + "]");
    }

    private static void checkUniqueNames(List<String> names) {
        // JFreeChart keys series by name: a duplicate would be refused deep inside it, or merged
        if (new java.util.HashSet<>(names).size() != names.size()) throw new IllegalArgumentException("series names must be distinct, got " + names);
    }
}
