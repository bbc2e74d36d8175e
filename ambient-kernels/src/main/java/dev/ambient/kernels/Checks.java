package dev.ambient.kernels;

import java.util.Arrays;
import java.util.StringJoiner;

/** Argument checks shared by the kernel calls; all run before any downcall. */
final class Checks {

    private Checks() {}

    /**
     * Checks that every tensor is present, open and on one device, and returns that device.
     * {@code namesAndTensors} alternates names and tensors: "x", x, "y", y.
     */
    static Device sameDevice(String function, Object... namesAndTensors) {
        Device device = null;
        String first = null;
        for (int i = 0; i < namesAndTensors.length; i += 2) {
            String name = (String) namesAndTensors[i];
            Tensor t = (Tensor) namesAndTensors[i + 1];
            if (t == null) throw new IllegalArgumentException(function + ": " + name + " is null");
            if (t.isClosed()) throw new IllegalStateException(function + ": " + name + " (" + t.describe() + ") is closed");
            if (device == null) {
                device = t.device();
                first = name;
            } else if (t.device() != device) {
                throw new IllegalArgumentException(function + ": " + first + " is on " + device + " but " + name
                        + " is on " + t.device() + "; move them to one device first");
            }
        }
        return device;
    }

    /**
     * "x [2, 3], y [2, 3]" for messages, formatted only when a message is built: every kernel
     * call names its arguments, and formatting them on the successful path cost more Java time
     * than the small kernels themselves.
     */
    static Shapes shapes(Object... namesAndTensors) {
        return new Shapes(namesAndTensors, null);
    }

    /** Names and tensors, then names and scalar values, formatted by {@link #toString}. */
    record Shapes(Object[] namesAndTensors, Object[] namesAndValues) {
        /** These shapes followed by ", name value" for each pair. */
        Shapes and(Object... namesAndValues) {
            return new Shapes(namesAndTensors, namesAndValues);
        }

        @Override
        public String toString() {
            StringJoiner joiner = new StringJoiner(", ");
            for (int i = 0; i < namesAndTensors.length; i += 2) {
                Tensor t = (Tensor) namesAndTensors[i + 1];
                joiner.add(namesAndTensors[i] + " " + (t == null ? "null" : Arrays.toString(t.shape())));
            }
            if (namesAndValues != null)
                for (int i = 0; i < namesAndValues.length; i += 2) joiner.add(namesAndValues[i] + " " + namesAndValues[i + 1]);
            return joiner.toString();
        }
    }

    static void sameShape(String function, String nameA, Tensor a, String nameB, Tensor b) {
        if (!Arrays.equals(a.shape(), b.shape())) {
            throw new IllegalArgumentException(function + ": " + nameA + " " + Arrays.toString(a.shape()) + " and "
                    + nameB + " " + Arrays.toString(b.shape()) + " must have the same shape");
        }
    }

    /** Refuses overlapping memory where a kernel cannot handle it (identical tensors included). */
    static void distinct(String function, String nameA, Tensor a, String nameB, Tensor b) {
        if (a.overlaps(b)) {
            throw new IllegalArgumentException(function + ": " + nameA + " and " + nameB + " share memory, which "
                    + function + " does not allow");
        }
    }

    /** Overlap is allowed only when the two are exactly the same elements (in-place use). */
    static void identicalOrDistinct(String function, String nameA, Tensor a, String nameB, Tensor b) {
        if (a.overlaps(b) && a.segment().address() != b.segment().address()) {
            throw new IllegalArgumentException(function + ": " + nameA + " and " + nameB
                    + " partly overlap; they must be the same memory or not overlap at all");
        }
    }

    static void finite(String function, String name, float value) {
        if (!Float.isFinite(value)) throw new IllegalArgumentException(function + ": " + name + " = " + value + " is not finite");
    }
}
