package dev.ambient.model.train;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import dev.ambient.model.Precond;
import org.junit.jupiter.api.Test;

/** Learning-rate and EMA schedules and the preconditioning against hand-computed values. */
class SchedulesTest {

    @Test
    void learningRateRampsUpThenDecaysAsInverseSquareRoot() {
        var schedule = new LearningRateSchedule(0.012, 70_000, 10_000_000);
        assertEquals(0.0, schedule.at(0, 2048));
        assertEquals(0.012 * 0.5, schedule.at(5_000_000, 2048), 1e-12);
        assertEquals(0.012, schedule.at(70_000L * 2048, 2048), 1e-12);
        assertEquals(0.012 / 2, schedule.at(4 * 70_000L * 2048, 2048), 1e-12);
        assertEquals(0.001, new LearningRateSchedule(0.001, 0, 0).at(123, 64), 0);
    }

    @Test
    void powerFunctionExponentMatchesItsStd() {
        for (double std : new double[] {0.01, 0.05, 0.10, 0.2}) {
            double gamma = EmaSchedule.gammaOf(std);
            assertEquals(std, EmaSchedule.stdOf(gamma), 1e-12);
            // it is the largest real root of EDM2's cubic
            double k = 1 / (std * std);
            assertEquals(0, gamma * gamma * gamma + 7 * gamma * gamma + (16 - k) * gamma + (12 - k), 1e-6 * k * gamma);
        }
        assertEquals(6.94, EmaSchedule.gammaOf(0.10), 0.01); // EDM2 paper: sigma_rel 0.10 <-> gamma ~ 6.94
        assertThrows(IllegalArgumentException.class, () -> EmaSchedule.gammaOf(0.5));
        var ema = EmaSchedule.powerFunction(0.05);
        assertEquals(Math.pow(1 - 64.0 / 6400, ema.gamma() + 1), ema.beta(6400, 64), 1e-15);
    }

    @Test
    void halfLifeEmaRampsUp() {
        var ema = EmaSchedule.halfLife(500_000, 0.05);
        assertEquals(Math.pow(0.5, 512.0 / 500_000), ema.beta(100_000_000, 512), 1e-15);
        assertEquals(Math.pow(0.5, 512.0 / (0.05 * 1_000_000)), ema.beta(1_000_000, 512), 1e-15);
    }

    @Test
    void preconditioningCoefficients() {
        Precond p = Precond.EDM;
        double sigma = 1.3, sd = 0.5;
        assertEquals(sd * sd / (sigma * sigma + sd * sd), p.cSkip(sigma), 1e-15);
        // D is unit-variance preserving: c_skip^2 (sigma^2 + sd^2) + c_out^2 = sd^2
        assertEquals(sd * sd, p.cSkip(sigma) * p.cSkip(sigma) * (sigma * sigma + sd * sd) + p.cOut(sigma) * p.cOut(sigma), 1e-12);
        assertEquals(1 / (p.cOut(sigma) * p.cOut(sigma)), p.lossWeight(sigma), 1e-12);
        assertEquals(Math.log(sigma) / 4, p.cNoise(sigma), 1e-15);
    }
}
