package dev.ambient.kernels;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import dev.ambient.kernels.VendorLibraries.Library;
import dev.ambient.kernels.VendorLibraries.Status;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;
import org.junit.jupiter.api.Test;

/**
 * cuBLAS and cuDNN are found or reported absent, never an error. On this project's machines
 * they are absent; where they are present (a GPU machine with PyTorch), the version call must
 * answer and every function of our header must be bound.
 */
class VendorLibrariesTest {

    @ParameterizedTest
    @EnumSource(Library.class)
    void presentWithAVersionOrAbsentWithAReason(Library library) {
        Status status = VendorLibraries.find(library);
        assertNotNull(status);
        System.out.println("VendorLibrariesTest: " + status.describe());
        if (status.present()) {
            assertNotNull(status.path());
            assertTrue(status.missing().isEmpty(), "functions missing: " + status.missing());
            assertNotNull(status.version(), status.describe());
            int major = Integer.parseInt(status.version().split("\\.")[0]);
            assertTrue(major >= (library == Library.CUBLAS ? 11 : 8), status.describe());
            assertTrue(status.version().matches("\\d+\\.\\d+\\.\\d+.*"), status.version());
            assertTrue(status.usable());
        } else {
            assertNull(status.path());
            assertFalse(status.usable());
            assertNotNull(status.problem());
            assertTrue(status.describe().startsWith(library.displayName() + ": not found ("), status.describe());
            assertFalse(status.searched().isEmpty(), "the places tried are listed");
        }
    }

    @Test
    void aNamedFileThatIsMissingIsReportedWithoutFallingBack(@TempDir Path dir) {
        Path missing = dir.resolve("libcublas.so.12");
        Status status = VendorLibraries.find(Library.CUBLAS, Map.of("AMBIENT_CUBLAS", missing.toString()), new Properties());
        assertFalse(status.present());
        assertEquals(List.of("AMBIENT_CUBLAS=" + missing), status.searched(), "only the named file is tried");
        assertTrue(status.problem().contains("AMBIENT_CUBLAS=" + missing) && status.problem().contains("not a file"),
                status.problem());
    }

    @Test
    void thePropertyWinsOverTheVariableAndANonLibraryIsReported(@TempDir Path dir) throws IOException {
        Path notALibrary = Files.writeString(dir.resolve("libcudnn.so.9"), "not an ELF file");
        Properties properties = new Properties();
        properties.setProperty("ambient.cudnn", notALibrary.toString());
        Status status = VendorLibraries.find(Library.CUDNN, Map.of("AMBIENT_CUDNN", "/elsewhere/libcudnn.so"), properties);
        assertFalse(status.present());
        assertEquals(List.of("-Dambient.cudnn=" + notALibrary), status.searched());
        assertTrue(status.problem().contains("could not be loaded: not an ELF shared library"), status.problem());
    }

    @Test
    void pipWheelsUnderAVirtualEnvironmentAreSearched(@TempDir Path venv) throws IOException {
        Path lib = Files.createDirectories(venv.resolve("lib/python3.12/site-packages/nvidia/cudnn/lib"));
        Path fake = Files.writeString(lib.resolve("libcudnn.so.9"), "not an ELF file");
        Map<String, String> environment = Map.of("VIRTUAL_ENV", venv.toString());
        assertTrue(VendorLibraries.folders(Library.CUDNN, environment).contains(lib),
                "folders: " + VendorLibraries.folders(Library.CUDNN, environment));
        Status status = VendorLibraries.find(Library.CUDNN, environment, new Properties());
        if (!status.present()) { // a real cuDNN on the system path would be found first
            assertTrue(status.searched().contains(fake.toString()), "searched: " + status.searched());
            assertTrue(status.problem().contains(fake + ": not an ELF shared library"), status.problem());
        }
    }

    @Test
    void aLibraryThatIsNotCublasLoadsButLacksItsFunctions() throws IOException {
        Path other = NativeLibraries.locate(NativeLibraries.CPU_LIBRARY);
        Status status = VendorLibraries.find(Library.CUBLAS, Map.of("AMBIENT_CUBLAS", other.toString()), new Properties());
        assertTrue(status.present(), status.describe());
        assertFalse(status.usable());
        assertNull(status.version());
        assertTrue(status.missing().contains("cublasSgemm_v2") && status.missing().contains("cublasGetProperty"),
                "missing: " + status.missing());
        assertTrue(status.describe().contains("of unknown version at " + other) && status.describe().contains("lacks"),
                status.describe());
    }

    /**
     * The stand-ins native/tests/vendor_stub.c builds where CMake found the CUDA toolkit: each
     * exports every function of our header, answers the version calls, and needs its companion
     * (libcublasLt, libcudnn_graph) by soname without an RPATH, so it loads only when the
     * companion is opened first from the same folder, as for a pip wheel.
     */
    @ParameterizedTest
    @EnumSource(Library.class)
    void standInsLoadAfterTheirCompanionsWithTheirVersion(Library library) {
        Path stubs = Path.of("../native/target/cmake-release/tests/vendor-stubs");
        Path file = library == Library.CUBLAS ? stubs.resolve("cublas/libcublas.so.12") : stubs.resolve("cudnn/libcudnn.so.9");
        Assumptions.assumeTrue(Files.isRegularFile(file), "no stand-ins built (no CUDA toolkit): " + file);
        Properties properties = new Properties();
        properties.setProperty(library.property(), file.toAbsolutePath().toString());
        Status status = VendorLibraries.find(library, Map.of(), properties);
        assertTrue(status.usable(), status.describe());
        assertEquals(library == Library.CUBLAS ? "12.4.5" : "9.1.0 (for CUDA 12.4)", status.version());
        assertEquals(library.displayName() + " " + status.version() + " at " + file.toAbsolutePath(), status.describe());
    }

    @Test
    void versionNumbersOfBothCudnnSchemes() {
        assertEquals("8.9.6", VendorLibraries.cudnnVersion(8906));
        assertEquals("9.1.0", VendorLibraries.cudnnVersion(90100));
        assertEquals("9.10.2", VendorLibraries.cudnnVersion(91002));
        assertEquals("12.4", VendorLibraries.cudaVersion(12040));
    }
}
