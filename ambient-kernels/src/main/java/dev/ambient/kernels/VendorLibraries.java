package dev.ambient.kernels;

import dev.ambient.bindings.CublasNative;
import dev.ambient.bindings.CudnnNative;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;

/**
 * Finds NVIDIA's cuBLAS and cuDNN at run time, the libraries Ambient's GEMM and convolutions are
 * compared with (native/tests/vendor_compare.c times them side by side on a GPU machine). Ambient
 * never needs them: absence is a status, never an error, and nothing here throws.
 *
 * <p>Where each library is looked for, in order (the first that loads wins):
 * <ol>
 *   <li>the file named by the system property {@code ambient.cublas} / {@code ambient.cudnn} or
 *       the variable {@code AMBIENT_CUBLAS} / {@code AMBIENT_CUDNN}; when one is set, only that
 *       file is tried, and its failure is the status (no silent fallback to another copy);
 *   <li>the system library path, by soname ({@code libcublas.so.13}, {@code .12}, {@code .11},
 *       {@code libcublas.so}; {@code libcudnn.so.9}, {@code .8}, {@code libcudnn.so}): what
 *       {@code dlopen} finds through {@code LD_LIBRARY_PATH} and the loader's cache;
 *   <li>a CUDA toolkit: {@code $CUDA_HOME/lib64}, {@code $CUDA_PATH/lib64},
 *       {@code /usr/local/cuda/lib64};
 *   <li>Python's site-packages, where PyTorch's pip wheels put them ({@code nvidia/cublas/lib},
 *       {@code nvidia/cudnn/lib}, {@code nvidia/cu13/lib}, {@code torch/lib}): under
 *       {@code $VIRTUAL_ENV}, {@code $CONDA_PREFIX}, {@code $PYTHONPATH}, {@code ~/.local} and
 *       the usual system prefixes.
 * </ol>
 * A library loaded from a folder gets its companions loaded first from the same folder
 * ({@code libcublasLt} for cuBLAS; {@code libcudnn_graph} or {@code libcudnn_ops_infer} for cuDNN,
 * which hold its version calls), so that a pip wheel works without {@code LD_LIBRARY_PATH}.
 * The version is read with calls that need no GPU ({@code cublasGetProperty},
 * {@code cudnnGetVersion}).
 */
public final class VendorLibraries {

    /** The two libraries and how to find them. */
    public enum Library {
        CUBLAS("cuBLAS", "libcublas.so", List.of("13", "12", "11"), "ambient.cublas", "AMBIENT_CUBLAS",
                List.of("nvidia/cublas/lib", "nvidia/cu13/lib", "nvidia/cu12/lib", "torch/lib"), List.of("libcublasLt")),
        CUDNN("cuDNN", "libcudnn.so", List.of("9", "8"), "ambient.cudnn", "AMBIENT_CUDNN",
                List.of("nvidia/cudnn/lib", "nvidia/cu13/lib", "nvidia/cu12/lib", "torch/lib"),
                List.of("libcudnn_graph", "libcudnn_ops_infer"));

        private final String displayName;
        private final String fileName;
        private final List<String> majors;
        private final String property;
        private final String variable;
        private final List<String> sitePackagesFolders;
        private final List<String> companions;

        Library(String displayName, String fileName, List<String> majors, String property, String variable,
                List<String> sitePackagesFolders, List<String> companions) {
            this.displayName = displayName;
            this.fileName = fileName;
            this.majors = majors;
            this.property = property;
            this.variable = variable;
            this.sitePackagesFolders = sitePackagesFolders;
            this.companions = companions;
        }

        public String displayName() {
            return displayName;
        }

        /** The system property that names the file to load. */
        public String property() {
            return property;
        }

        /** The environment variable that names the file to load. */
        public String variable() {
            return variable;
        }

        /** File names to try in a folder or on the system path, newest major version first. */
        List<String> fileNames() {
            List<String> names = new ArrayList<>();
            for (String major : majors) names.add(fileName + "." + major);
            names.add(fileName);
            return names;
        }
    }

    /**
     * What was found for one library.
     *
     * @param library which one
     * @param present whether a copy loaded (its functions may still be missing, see {@code missing})
     * @param path the file that loaded, or the soname the system path resolved; null when absent
     * @param version "major.minor.patch" (and for cuDNN the CUDA runtime it targets), or null
     * @param missing functions of our header that the loaded copy does not export
     * @param searched every place tried, in order
     * @param problem why it is absent, or what went wrong after loading; null when all is well
     */
    public record Status(Library library, boolean present, String path, String version, List<String> missing,
                         List<String> searched, String problem) {

        /** Present, with every function of our header and a version. */
        public boolean usable() {
            return present && missing.isEmpty() && version != null;
        }

        /** One line for logs and reports. */
        public String describe() {
            String name = library.displayName();
            if (!present) return name + ": not found (" + problem + ")";
            StringBuilder line = new StringBuilder(name).append(' ')
                    .append(version != null ? version : "of unknown version").append(" at ").append(path);
            if (!missing.isEmpty()) line.append("; lacks ").append(String.join(", ", missing));
            if (problem != null) line.append("; ").append(problem);
            return line.toString();
        }
    }

    private VendorLibraries() {}

    /** Looks for the library as the class comment says, with this process's environment. */
    public static Status find(Library library) {
        return find(library, System.getenv(), System.getProperties());
    }

    /** Both libraries, one line each. */
    public static String report() {
        return find(Library.CUBLAS).describe() + "\n" + find(Library.CUDNN).describe();
    }

    /** {@link #find(Library)} with the environment and properties given (for tests). */
    static Status find(Library library, Map<String, String> environment, Properties properties) {
        String named = properties.getProperty(library.property);
        String namedBy = "-D" + library.property;
        if (named == null || named.isBlank()) {
            named = environment.get(library.variable);
            namedBy = library.variable;
        }
        if (named != null && !named.isBlank()) {
            Path file = Path.of(named.strip());
            String where = namedBy + "=" + file;
            if (!Files.isRegularFile(file)) {
                return absent(library, List.of(where), where + " is not a file");
            }
            Attempt attempt = load(library, file.toString(), file.toAbsolutePath().getParent());
            if (attempt.lookup == null) return absent(library, List.of(where), where + " could not be loaded: " + attempt.problem);
            return loaded(library, file.toString(), attempt.lookup, List.of(where));
        }
        List<String> searched = new ArrayList<>();
        List<String> failures = new ArrayList<>();
        for (String soname : library.fileNames()) {
            searched.add(soname + " on the system library path");
            Attempt attempt = load(library, soname, null);
            if (attempt.lookup != null) return loaded(library, soname + " (system library path)", attempt.lookup, searched);
        }
        for (Path folder : folders(library, environment)) {
            for (String name : library.fileNames()) {
                Path file = folder.resolve(name);
                if (!Files.isRegularFile(file)) continue;
                searched.add(file.toString());
                Attempt attempt = load(library, file.toString(), folder);
                if (attempt.lookup != null) return loaded(library, file.toString(), attempt.lookup, searched);
                failures.add(file + ": " + attempt.problem);
                break; // one file per folder: the newest that is there
            }
        }
        String problem = failures.isEmpty()
                ? "looked for " + String.join(", ", library.fileNames()) + " in " + library.variable
                        + ", the system library path, a CUDA toolkit's lib64 and Python's site-packages ("
                        + String.join(", ", library.sitePackagesFolders) + ")"
                : "found but could not load " + String.join("; ", failures);
        return absent(library, searched, problem);
    }

    /** The CUDA toolkit and site-packages folders that exist, in search order. */
    static List<Path> folders(Library library, Map<String, String> environment) {
        Set<Path> folders = new LinkedHashSet<>();
        for (String variable : List.of("CUDA_HOME", "CUDA_PATH")) {
            String home = environment.get(variable);
            if (home != null && !home.isBlank()) folders.add(Path.of(home, "lib64"));
        }
        folders.add(Path.of("/usr/local/cuda/lib64"));
        for (Path sitePackages : sitePackages(environment)) {
            for (String sub : library.sitePackagesFolders) folders.add(sitePackages.resolve(sub));
        }
        return folders.stream().filter(Files::isDirectory).toList();
    }

    /** Python package folders that may hold PyTorch's NVIDIA wheels. */
    private static List<Path> sitePackages(Map<String, String> environment) {
        List<Path> result = new ArrayList<>();
        String pythonPath = environment.get("PYTHONPATH");
        if (pythonPath != null) {
            for (String entry : pythonPath.split(":")) if (!entry.isBlank()) result.add(Path.of(entry));
        }
        List<Path> prefixes = new ArrayList<>();
        for (String variable : List.of("VIRTUAL_ENV", "CONDA_PREFIX")) {
            String prefix = environment.get(variable);
            if (prefix != null && !prefix.isBlank()) prefixes.add(Path.of(prefix, "lib"));
        }
        String home = environment.get("HOME");
        if (home != null && !home.isBlank()) prefixes.add(Path.of(home, ".local", "lib"));
        prefixes.add(Path.of("/usr/local/lib"));
        prefixes.add(Path.of("/usr/lib"));
        prefixes.add(Path.of("/opt/conda/lib"));
        for (Path prefix : prefixes) {
            for (Path python : pythonFolders(prefix)) {
                result.add(python.resolve("site-packages"));
                result.add(python.resolve("dist-packages"));
            }
        }
        return result;
    }

    /** prefix/python3* (and Debian's prefix/python3), newest first by name. */
    private static List<Path> pythonFolders(Path prefix) {
        List<Path> found = new ArrayList<>();
        if (!Files.isDirectory(prefix)) return found;
        try (DirectoryStream<Path> entries = Files.newDirectoryStream(prefix, "python3*")) {
            for (Path entry : entries) if (Files.isDirectory(entry)) found.add(entry);
        } catch (IOException | RuntimeException e) {
            return found; // an unreadable folder is one place fewer to look, not an error
        }
        found.sort((a, b) -> b.getFileName().toString().compareTo(a.getFileName().toString()));
        return found;
    }

    private record Attempt(SymbolLookup lookup, String problem) {}

    /**
     * Opens {@code name} (a path, or a soname for the system path). From a folder, the
     * companions in it with the same version suffix are opened first; their failures are left
     * to the main library's own message.
     */
    private static Attempt load(Library library, String name, Path folder) {
        String fileName = Path.of(name).getFileName().toString();
        if (folder != null && fileName.startsWith(library.fileName)) {
            String suffix = fileName.substring(library.fileName.length());
            for (String companion : library.companions) {
                Path file = folder.resolve(companion + ".so" + suffix);
                if (Files.isRegularFile(file) && isElf(file)) {
                    try {
                        open(file.toString());
                    } catch (RuntimeException | LinkageError e) {
                        // reported through the main library's failure, if it fails
                    }
                }
            }
        }
        if (name.contains("/") && !isElf(Path.of(name))) return new Attempt(null, "not an ELF shared library");
        try {
            return new Attempt(open(name), null);
        } catch (RuntimeException | LinkageError e) {
            return new Attempt(null, String.valueOf(e.getMessage()));
        }
    }

    /** Checked before dlopen, which the JVM answers for other files with a misleading warning. */
    private static boolean isElf(Path file) {
        byte[] magic = new byte[4];
        try (var in = Files.newInputStream(file)) {
            return in.readNBytes(magic, 0, 4) == 4 && magic[0] == 0x7f && magic[1] == 'E' && magic[2] == 'L' && magic[3] == 'F';
        } catch (IOException e) {
            return false;
        }
    }

    private static SymbolLookup open(String name) {
        // Arena.global(): a vendor library, once loaded, stays for the life of the process
        // (cuBLAS and cuDNN keep threads and caches that make unloading unsafe).
        return SymbolLookup.libraryLookup(name, Arena.global());
    }

    private static Status absent(Library library, List<String> searched, String problem) {
        return new Status(library, false, null, null, List.of(), List.copyOf(searched), problem);
    }

    private static Status loaded(Library library, String path, SymbolLookup lookup, List<String> searched) {
        List<String> missing;
        String version = null, problem = null;
        try {
            if (library == Library.CUBLAS) {
                CublasNative cublas = new CublasNative(lookup);
                missing = cublas.missingFunctions();
                if (!missing.contains("cublasGetProperty")) {
                    try (Arena arena = Arena.ofConfined()) {
                        MemorySegment value = arena.allocate(ValueLayout.JAVA_INT);
                        int[] parts = new int[3];
                        int[] types = {CublasNative.MAJOR_VERSION, CublasNative.MINOR_VERSION, CublasNative.PATCH_LEVEL};
                        for (int i = 0; i < 3 && problem == null; i++) {
                            int status = cublas.cublasGetProperty(types[i], value);
                            if (status != CublasNative.CUBLAS_STATUS_SUCCESS) problem = "cublasGetProperty returned status " + status;
                            parts[i] = value.get(ValueLayout.JAVA_INT, 0);
                        }
                        if (problem == null) version = parts[0] + "." + parts[1] + "." + parts[2];
                    }
                }
            } else {
                CudnnNative cudnn = new CudnnNative(lookup);
                missing = cudnn.missingFunctions();
                if (!missing.contains("cudnnGetVersion")) {
                    version = cudnnVersion(cudnn.cudnnGetVersion());
                    if (!missing.contains("cudnnGetCudartVersion")) {
                        version += " (for CUDA " + cudaVersion(cudnn.cudnnGetCudartVersion()) + ")";
                    }
                }
            }
        } catch (RuntimeException | LinkageError e) {
            return new Status(library, true, path, null, List.of(), List.copyOf(searched),
                    "loaded, but reading its version failed: " + e.getMessage());
        }
        return new Status(library, true, path, version, List.copyOf(missing), List.copyOf(searched), problem);
    }

    /** CUDNN_VERSION as "major.minor.patch": major * 1000 + ... up to cuDNN 8, * 10000 from cuDNN 9. */
    static String cudnnVersion(long version) {
        long major = version >= 90000 ? version / 10000 : version / 1000;
        long rest = version >= 90000 ? version % 10000 : version % 1000;
        return major + "." + rest / 100 + "." + rest % 100;
    }

    /** CUDART_VERSION (major * 1000 + minor * 10) as "major.minor". */
    static String cudaVersion(long version) {
        return version / 1000 + "." + version % 1000 / 10;
    }
}
