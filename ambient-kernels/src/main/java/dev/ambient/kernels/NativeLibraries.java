package dev.ambient.kernels;

import dev.ambient.bindings.AmbientNative;
import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.HexFormat;
import java.util.Locale;

/**
 * Finds and opens the native backends. They ship inside the ambient-native jar under
 * {@code META-INF/native/linux-x86_64/} and are extracted once to a versioned folder under the
 * temporary directory (rewritten only when the checksum differs). For development, the system
 * property {@code ambient.native.dir} (or the variable {@code AMBIENT_NATIVE_DIR}) names a
 * folder to load them from instead, such as {@code native/target/cmake-release}.
 */
final class NativeLibraries {

    static final String DIRECTORY_PROPERTY = "ambient.native.dir";
    static final String DIRECTORY_VARIABLE = "AMBIENT_NATIVE_DIR";
    static final String CPU_LIBRARY = "libambient_cpu.so";
    static final String CUDA_LIBRARY = "libambient_cuda.so";
    private static final String RESOURCE_FOLDER = "/META-INF/native/linux-x86_64/";

    private NativeLibraries() {}

    /** Where the named library is, extracting it from the jar when needed. */
    static Path locate(String fileName) throws IOException {
        String os = System.getProperty("os.name", "").toLowerCase(Locale.ROOT);
        String arch = System.getProperty("os.arch", "");
        if (!os.contains("linux") || !(arch.equals("amd64") || arch.equals("x86_64"))) {
            throw new IOException("Ambient ships native libraries for linux-x86_64 only; this is "
                    + System.getProperty("os.name") + "/" + arch);
        }
        String dir = System.getProperty(DIRECTORY_PROPERTY, System.getenv(DIRECTORY_VARIABLE));
        if (dir != null && !dir.isBlank()) {
            Path path = Path.of(dir).resolve(fileName);
            if (!Files.isRegularFile(path)) {
                throw new IOException(fileName + " not found in " + path.getParent() + " (set by "
                        + DIRECTORY_PROPERTY + " or " + DIRECTORY_VARIABLE + ")");
            }
            return path;
        }
        return extract(fileName);
    }

    /** Opens a library for the life of the process. */
    static SymbolLookup open(Path path) {
        // Arena.global(): a backend, once loaded, stays for the life of the process; unloading
        // a library with live OpenMP or CUDA threads is not safe.
        return SymbolLookup.libraryLookup(path, Arena.global());
    }

    private static Path extract(String fileName) throws IOException {
        byte[] bytes;
        try (InputStream in = NativeLibraries.class.getResourceAsStream(RESOURCE_FOLDER + fileName)) {
            if (in == null) {
                throw new IOException(fileName + " is not in the class path under " + RESOURCE_FOLDER
                        + " (is the ambient-native jar on the class path, and was it built on a machine"
                        + (fileName.equals(CUDA_LIBRARY) ? " with nvcc?)" : " with CMake and gcc?)"));
            }
            bytes = in.readAllBytes();
        }
        String version = AmbientNative.AMBIENT_VERSION_MAJOR + "." + AmbientNative.AMBIENT_VERSION_MINOR + "."
                + AmbientNative.AMBIENT_VERSION_PATCH;
        Path folder = Path.of(System.getProperty("java.io.tmpdir"),
                "ambient-native-" + version + "-" + System.getProperty("user.name", "user"));
        Files.createDirectories(folder);
        Path target = folder.resolve(fileName);
        if (Files.isRegularFile(target) && sha256(Files.readAllBytes(target)).equals(sha256(bytes))) {
            return target;
        }
        // Write beside it and rename, so that a concurrent JVM never maps a half-written file.
        Path temporary = Files.createTempFile(folder, fileName, ".part");
        try {
            Files.write(temporary, bytes);
            Files.move(temporary, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(temporary);
        }
        return target;
    }

    private static String sha256(byte[] bytes) {
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bytes));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException("SHA-256 is missing from this JDK", e);
        }
    }
}
