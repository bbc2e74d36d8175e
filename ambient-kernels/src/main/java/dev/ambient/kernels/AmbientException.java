package dev.ambient.kernels;

/**
 * A native call that failed: names the function, the arguments' shapes and the native
 * library's own message (from {@code ambient_last_error()}).
 */
public final class AmbientException extends RuntimeException {

    /** Why a native call failed, from ambient.h's {@code AMBIENT_STATUS_*}. */
    public enum Status {
        OK, INVALID_ARGUMENT, OUT_OF_MEMORY, NO_DEVICE, DEVICE_ERROR, INTERNAL, UNKNOWN;

        static Status of(int code) {
            Status[] all = values();
            return code >= 0 && code < all.length - 1 ? all[code] : UNKNOWN;
        }
    }

    private static final long serialVersionUID = 1L;

    private final Status status;
    private final String function;

    AmbientException(Status status, String function, String message) {
        super(message);
        this.status = status;
        this.function = function;
    }

    /** The status the native function returned. */
    public Status status() {
        return status;
    }

    /** The native function that failed, e.g. {@code ambient_gemm}. */
    public String function() {
        return function;
    }
}
