package dev.ambient.kernels;

import dev.ambient.bindings.AmbientNative;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Path;
import java.util.function.IntSupplier;
import java.util.function.ToIntFunction;

/**
 * One loaded native library (CPU or CUDA) and its generated bindings; turns a non-zero status
 * into an {@link AmbientException}. The only class that sees raw statuses.
 */
final class Backend {

    final AmbientNative api;
    final Device.Kind kind;
    final Path path;

    private Backend(AmbientNative api, Device.Kind kind, Path path) {
        this.api = api;
        this.kind = kind;
        this.path = path;
    }

    /** Loads a backend library; an IOException or linkage error says why it could not. */
    static Backend load(Device.Kind kind) throws IOException {
        String fileName = kind == Device.Kind.CPU ? NativeLibraries.CPU_LIBRARY : NativeLibraries.CUDA_LIBRARY;
        Path path = NativeLibraries.locate(fileName);
        AmbientNative api;
        try {
            api = new AmbientNative(NativeLibraries.open(path));
        } catch (IllegalArgumentException e) {
            throw new IOException("cannot open " + path + ": " + e.getMessage()
                    + (kind == Device.Kind.CPU ? " (libgomp.so.1, the OpenMP runtime of gcc, must be installed)" : ""), e);
        }
        // The CPU library must implement the whole header. The CUDA library may lag behind it
        // while ops are being ported: Device.auto() then refuses it (naming what is missing),
        // and calling a missing function on an explicitly chosen CUDA device throws.
        if (kind == Device.Kind.CPU && !api.missingFunctions().isEmpty()) {
            throw new IOException(path + " does not export " + api.missingFunctions()
                    + ": it was built from another version of ambient.h");
        }
        int backend = api.ambient_library_backend();
        int expected = kind == Device.Kind.CPU ? AmbientNative.AMBIENT_BACKEND_CPU : AmbientNative.AMBIENT_BACKEND_CUDA;
        if (backend != expected) throw new IOException(path + " reports backend " + backend + ", expected " + expected);
        return new Backend(api, kind, path);
    }

    /** The calling thread's last native error message. */
    String lastError() {
        MemorySegment message = api.ambient_last_error();
        if (message.equals(MemorySegment.NULL)) return "";
        return message.reinterpret(Long.MAX_VALUE).getString(0);
    }

    /**
     * Throws when status is not OK, naming the function and what it was called with; details
     * (a String or {@link Checks.Shapes}) is formatted only then.
     */
    void check(int status, String function, Object details) {
        if (status == AmbientNative.AMBIENT_STATUS_OK) return;
        AmbientException.Status s = AmbientException.Status.of(status);
        String message = lastError();
        throw new AmbientException(s, function, function + " failed with " + s
                + (details.toString().isEmpty() ? "" : " for " + details) + ": " + (message.isEmpty() ? "(no message)" : message));
    }

    /** Runs a call that writes one int through an out-pointer and returns it. */
    int callForInt(String function, ToIntFunction<MemorySegment> call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
            check(call.applyAsInt(out), function, "");
            return out.get(ValueLayout.JAVA_INT, 0);
        }
    }

    /** Runs a call that writes one double through an out-pointer and returns it. */
    double callForDouble(String function, ToIntFunction<MemorySegment> call) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment out = arena.allocate(ValueLayout.JAVA_DOUBLE);
            check(call.applyAsInt(out), function, "");
            return out.get(ValueLayout.JAVA_DOUBLE, 0);
        }
    }

    void call(String function, String details, IntSupplier call) {
        check(call.getAsInt(), function, details);
    }
}
