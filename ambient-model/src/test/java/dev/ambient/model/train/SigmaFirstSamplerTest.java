package dev.ambient.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.model.annotate.AnnotationTable;
import dev.ambient.model.annotate.FixedAnnotation;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/** The sigma-first sampler on synthetic annotation sets: usability rule, trust level, statistics, determinism, failure. */
class SigmaFirstSamplerTest {

    static long freshSeed() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        return seed;
    }

    /** n samples: the first `clean` clean, the rest at (sigmaMin, sigmaMax), in a seeded shuffled order. */
    static AnnotationTable synthetic(int n, int clean, double sigmaMin, double sigmaMax, long seed) {
        boolean[] corrupted = new boolean[n];
        for (int i = clean; i < n; i++) corrupted[i] = true;
        SplittableRandom r = new SplittableRandom(seed);
        for (int i = n - 1; i > 0; i--) {
            int j = r.nextInt(i + 1);
            boolean t = corrupted[i];
            corrupted[i] = corrupted[j];
            corrupted[j] = t;
        }
        return FixedAnnotation.table(corrupted, sigmaMin, sigmaMax);
    }

    @Test
    void bufferFollowsSMax() {
        assertEquals(2 / Math.sqrt(3), SigmaFirstSampler.Config.edm().buffer(), 1e-15);
        assertEquals(1, SigmaFirstSampler.Config.edm().withSMax(Double.POSITIVE_INFINITY).buffer());
        // an admitted pair at the boundary has ambient factor exactly s_max
        double sMax = 4, b = SigmaFirstSampler.Config.edm().buffer(), sigmaMin = 0.7, sigma = b * sigmaMin;
        assertEquals(sMax, sigma * sigma / (sigma * sigma - sigmaMin * sigmaMin), 1e-12);
        assertThrows(IllegalArgumentException.class, () -> SigmaFirstSampler.Config.edm().withSMax(1));
    }

    @Test
    void usageStatisticsOnTenPercentCleanNinetyPercentCorrupted() {
        long seed = freshSeed();
        int n = 200, clean = 20, draws = 100_000;
        double sigmaMin = 1.0;
        var config = SigmaFirstSampler.Config.edm2();
        var sampler = new SigmaFirstSampler(synthetic(n, clean, sigmaMin, 0, seed), config, seed);
        double b = sampler.buffer();
        double[] sMin = new double[n];
        var table = synthetic(n, clean, sigmaMin, 0, seed);
        System.arraycopy(table.sigmaMin(), 0, sMin, 0, n);
        int[] uses = new int[n];
        int high = 0, highCorrupted = 0;
        double sumLog = 0, sumLog2 = 0;
        for (int k = 0; k < draws; k++) {
            var d = sampler.next();
            uses[d.index()]++;
            double ls = Math.log(d.sigma());
            sumLog += ls;
            sumLog2 += ls * ls;
            boolean corrupted = sMin[d.index()] > 0;
            if (corrupted) {
                assertTrue(d.sigma() > b * sigmaMin, "a corrupted sample at sigma " + d.sigma());
                assertEquals(sigmaMin, d.sigmaTn(), "paper trust level");
                assertTrue(d.highNoise());
            } else {
                assertEquals(0, d.sigmaTn());
            }
            if (d.sigma() > b * sigmaMin) {
                high++;
                if (corrupted) highCorrupted++;
            }
        }
        assertEquals(0, sampler.redraws(), "clean samples cover every sigma");
        // the training sigma is exactly log-normal: 6 standard errors on the mean and std of ln sigma
        double mean = sumLog / draws, std = Math.sqrt(sumLog2 / draws - mean * mean);
        assertEquals(config.pMean(), mean, 6 * config.pStd() / Math.sqrt(draws));
        assertEquals(config.pStd(), std, 6 * config.pStd() / Math.sqrt(2.0 * draws));
        // P(sigma > b) under the log-normal
        double pHigh = 0.5 * erfc((Math.log(b * sigmaMin) - config.pMean()) / (config.pStd() * Math.sqrt(2)));
        assertEquals(pHigh, (double) high / draws, 6 * Math.sqrt(pHigh * (1 - pHigh) / draws));
        // above the buffer every sample is usable and the stream hands them out in proportion (loose: the stream is correlated)
        assertEquals(0.9, (double) highCorrupted / high, 0.05);
        // every sample is used, near its expected count: corrupted ones about 145 times (Poisson-like, sd 12,
        // so +-50 % is about 6 sd; 30 seeds gave 0.72..1.31), clean ones by every low-noise draw, more evenly still
        double cleanMean = (draws - highCorrupted) / (double) clean, corruptMean = highCorrupted / (double) (n - clean);
        for (int i = 0; i < n; i++) {
            double want = sMin[i] > 0 ? corruptMean : cleanMean;
            assertTrue(uses[i] > 0.5 * want && uses[i] < 1.5 * want, "sample " + i + " used " + uses[i] + " times, expected about " + want);
        }
    }

    @Test
    void releasedPixelTrustMakesTheTargetTheCorruptedImage() {
        long seed = freshSeed();
        var table = synthetic(100, 10, 1.89, 0, seed);
        var sampler = new SigmaFirstSampler(table, SigmaFirstSampler.Config.edm().withReleasedPixelTrust(true), seed);
        for (int k = 0; k < 5000; k++) {
            var d = sampler.next();
            assertEquals(0, d.sigmaTn(), "min(sigma_min, sigma_max) = 0 for (1.89, 0)");
            if (table.sigmaMin()[d.index()] > 0) assertTrue(d.sigma() > sampler.buffer() * 1.89);
        }
        // with both bounds set, the released rule takes the smaller and zeroes it above sigma_t
        var both = new SigmaFirstSampler(new double[] {0.8}, new double[] {0.5}, SigmaFirstSampler.Config.edm().withReleasedPixelTrust(true), seed);
        assertEquals(0.5, both.trustLevel(0, 2.0));
        assertEquals(0, both.trustLevel(0, 0.3));
    }

    @Test
    void donutSampleIsCleanBelowSigmaMaxAndNoisyAboveTheBuffer() {
        long seed = freshSeed();
        // sample 0: (0.3, 0.5); usable below 0.5 and above b * 0.3 = 0.346, so everywhere, with two roles
        var sampler = new SigmaFirstSampler(new double[] {0.3, 2.0}, new double[] {0.5, 0.1}, SigmaFirstSampler.Config.edm(), seed);
        double b = sampler.buffer();
        assertEquals(0, sampler.trustLevel(0, 0.32), "between sigma_min and b*sigma_min it is used through sigma_max, as clean");
        assertEquals(0.3, sampler.trustLevel(0, 0.35));
        assertEquals(0, sampler.trustLevel(0, 0.2));
        int seen = 0;
        for (int k = 0; k < 20_000; k++) {
            var d = sampler.next();
            assertTrue(sampler.usable(d.index(), d.sigma()));
            if (d.index() == 1) {
                assertTrue(d.sigma() > b * 2.0 || d.sigma() < 0.1, "sample 1 at " + d.sigma());
                seen++;
            }
            double factor = d.sigma() * d.sigma() / (d.sigma() * d.sigma() - d.sigmaTn() * d.sigmaTn());
            assertTrue(factor <= 4 + 1e-9, "ambient factor " + factor + " above s_max");
        }
        assertTrue(seen > 0);
    }

    @Test
    void sameSeedSameSequenceAndExactResume() {
        long seed = freshSeed();
        var table = synthetic(300, 30, 0.8, 0.05, seed);
        var config = SigmaFirstSampler.Config.edm2();
        var a = new SigmaFirstSampler(table, config, seed);
        var b = new SigmaFirstSampler(table, config, seed);
        var c = new SigmaFirstSampler(table, config, seed + 1);
        int differ = 0;
        SigmaFirstSampler.State saved = null;
        SigmaFirstSampler.Draw[] afterSave = new SigmaFirstSampler.Draw[1000];
        for (int k = 0; k < 3000; k++) {
            var x = a.next();
            assertEquals(x, b.next());
            if (!x.equals(c.next())) differ++;
            if (k == 1999) saved = a.state();
            if (k >= 2000) afterSave[k - 2000] = x;
        }
        assertTrue(differ > 2900, "another seed gives another sequence");
        var resumed = new SigmaFirstSampler(table, config, 12345);
        resumed.restore(saved);
        for (int k = 0; k < 1000; k++) assertEquals(afterSave[k], resumed.next());
        assertEquals(a.draws(), resumed.draws());
        assertNotEquals(0, a.draws());
    }

    @Test
    void uncoveredSigmasAreRedrawnAndAnAllButImpossibleSetFails() {
        long seed = freshSeed();
        // every sample corrupted at 1.0: nothing is usable at sigma <= b, so those draws are redrawn
        var config = SigmaFirstSampler.Config.edm();
        var sampler = new SigmaFirstSampler(synthetic(200, 0, 1.0, 0, seed), config, seed);
        int draws = 5000;
        for (int k = 0; k < draws; k++) assertTrue(sampler.next().sigma() > sampler.buffer());
        double pHigh = 0.5 * erfc((Math.log(sampler.buffer()) - config.pMean()) / (config.pStd() * Math.sqrt(2)));
        // redraws per draw is geometric with mean (1 - p)/p; 6 standard errors
        double perDraw = sampler.redraws() / (double) draws, want = (1 - pHigh) / pHigh, sd = Math.sqrt(1 - pHigh) / pHigh;
        assertEquals(want, perDraw, 6 * sd / Math.sqrt(draws));
        // sigma_min = 300 everywhere: usable only above 346, about 2e-9 of the distribution
        var hopeless = new SigmaFirstSampler(synthetic(50, 0, 300, 0, seed), config.withMaxRedraws(2000), seed);
        var e = assertThrows(IllegalStateException.class, hopeless::next);
        assertTrue(e.getMessage().contains("no sample is usable"), e.getMessage());
        assertEquals(2000, hopeless.redraws());
    }

    @Test
    void badInputsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> new SigmaFirstSampler(new double[0], new double[0], SigmaFirstSampler.Config.edm(), 1));
        assertThrows(IllegalArgumentException.class, () -> new SigmaFirstSampler(new double[] {-1}, new double[] {0}, SigmaFirstSampler.Config.edm(), 1));
        assertThrows(IllegalArgumentException.class, () -> new SigmaFirstSampler(new double[] {1, 2}, new double[] {0}, SigmaFirstSampler.Config.edm(), 1));
        assertThrows(IllegalArgumentException.class, () -> SigmaFirstSampler.Config.edm().withNoise(0, 0));
        var s = new SigmaFirstSampler(new double[] {0, 0}, new double[] {0, 0}, SigmaFirstSampler.Config.edm(), 1);
        assertThrows(IllegalArgumentException.class, () -> s.restore(new SigmaFirstSampler.State(0, 0, new int[] {0, 0}, 0, 0)));
    }

    /** Complementary error function (Numerical Recipes' Chebyshev fit, relative error below 1.2e-7). */
    static double erfc(double x) {
        double z = Math.abs(x), t = 1 / (1 + 0.5 * z);
        double r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806
                + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
        return x >= 0 ? r : 2 - r;
    }
}
