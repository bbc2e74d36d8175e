package dev.ambient.kernels;

import dev.ambient.bindings.AmbientNative;
import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.concurrent.ConcurrentHashMap;

/**
 * Where tensors live and kernels run: the CPU, or one CUDA GPU.
 *
 * <p>{@link #cpu()} and {@link #cuda(int)} name a device explicitly. {@link #auto()} takes CUDA
 * when its library loads and a device answers, else the CPU, and logs why each candidate was
 * taken or refused; {@code AMBIENT_DEVICE=cpu|cuda|cuda:N} (or the system property
 * {@code ambient.device}) forces a choice, and forcing one that is unavailable is an error.
 */
public final class Device {

    /** The kind of backend a device runs on. */
    public enum Kind { CPU, CUDA }

    /**
     * The precision of a device's matrix products (GEMM, the convolutions, and attention up to
     * head_dim 128): float32 throughout, or operands rounded once to tf32 or bf16 with float32
     * sums (CUDA's tensor cores).
     */
    public enum MatmulPrecision {
        FP32(0x1p-24), TF32(0x1p-11), BF16(0x1p-8);

        private final double unitRoundoff;

        MatmulPrecision(double unitRoundoff) {
            this.unitRoundoff = unitRoundoff;
        }

        /** The largest relative error of rounding one operand to this precision. */
        public double unitRoundoff() {
            return unitRoundoff;
        }
    }

    public static final String DEVICE_VARIABLE = "AMBIENT_DEVICE";
    public static final String DEVICE_PROPERTY = "ambient.device";

    private static final System.Logger LOG = System.getLogger(Device.class.getName());
    private static final ConcurrentHashMap<Integer, Device> CUDA_DEVICES = new ConcurrentHashMap<>();
    /** The device each thread last selected in the CUDA library (which keeps it per thread). */
    private static final ThreadLocal<Integer> SELECTED_CUDA = ThreadLocal.withInitial(() -> -1);

    private final Backend backend;
    private final int index;
    private final String name;

    private Device(Backend backend, int index, String name) {
        this.backend = backend;
        this.index = index;
        this.name = name;
    }

    // ---- Discovery ------------------------------------------------------------------------

    /** Loads each backend once; remembers why one could not be loaded. */
    private static final class Backends {
        static final Backend CPU;
        static final String CPU_PROBLEM;
        static final Backend CUDA;
        static final String CUDA_PROBLEM;

        static {
            Backend cpu = null, cuda = null;
            String cpuProblem = null, cudaProblem = null;
            try {
                cpu = Backend.load(Kind.CPU);
            } catch (IOException | RuntimeException | LinkageError e) {
                cpuProblem = e.getMessage();
            }
            try {
                cuda = Backend.load(Kind.CUDA);
            } catch (IOException | RuntimeException | LinkageError e) {
                cudaProblem = "library not loaded: " + e.getMessage();
            }
            CPU = cpu;
            CPU_PROBLEM = cpuProblem;
            CUDA = cuda;
            CUDA_PROBLEM = cudaProblem;
        }
    }

    private static final class CpuHolder {
        static final Device CPU = createCpu();

        private static Device createCpu() {
            if (Backends.CPU == null) {
                String problem = Backends.CPU_PROBLEM;
                throw new IllegalStateException("Ambient's CPU library cannot be loaded: " + problem
                        + (problem != null && problem.contains("does not export") ? ""
                                : ". Likely causes: the ambient-native jar is missing from the class path or was built"
                                + " without its libraries; this is not linux-x86_64; libgomp.so.1 is not installed;"
                                + " or the JVM lacks --enable-native-access=ALL-UNNAMED."));
            }
            return new Device(Backends.CPU, 0, deviceName(Backends.CPU, 0));
        }
    }

    /** The CPU: always available (its library is required). */
    public static Device cpu() {
        return CpuHolder.CPU;
    }

    /**
     * CUDA GPU number {@code index}.
     *
     * @throws IllegalStateException naming the reason when the CUDA library does not load, no
     *     GPU answers, or the index is out of range
     */
    public static Device cuda(int index) {
        if (index < 0) throw new IllegalArgumentException("CUDA device index " + index + " is negative");
        Device existing = CUDA_DEVICES.get(index);
        if (existing != null) return existing;
        String problem = cudaProblem();
        if (problem != null) throw new IllegalStateException("CUDA device " + index + " is unavailable: " + problem);
        int count = cudaDeviceCount();
        if (index >= count) {
            throw new IllegalStateException("CUDA device " + index + " does not exist: " + count + " device(s) answer");
        }
        return CUDA_DEVICES.computeIfAbsent(index, i -> new Device(Backends.CUDA, i, deviceName(Backends.CUDA, i)));
    }

    /** Why no CUDA device can be used, or null when at least one answers. */
    public static String cudaProblem() {
        return cudaState().problem();
    }

    /**
     * One question to the CUDA library: why no device can be used (null when one answers), and
     * whether the reason is a setting it refuses (INVALID_ARGUMENT at initialisation, e.g. an
     * unknown AMBIENT_CUDA_MATMUL), which is an error rather than a reason to use the CPU.
     */
    private record CudaState(String problem, boolean refusedSettings) {}

    private static CudaState cudaState() {
        if (Backends.CUDA == null) return new CudaState(Backends.CUDA_PROBLEM, false);
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment count = arena.allocate(ValueLayout.JAVA_INT);
            int status = Backends.CUDA.api.ambient_device_count(count);
            if (status != 0) {
                return new CudaState("library loaded, " + Backends.CUDA.lastError(),
                        status == AmbientNative.AMBIENT_STATUS_INVALID_ARGUMENT);
            }
            if (count.get(ValueLayout.JAVA_INT, 0) == 0) return new CudaState("library loaded, no CUDA device answers", false);
            return new CudaState(null, false);
        }
    }

    private static int cudaDeviceCount() {
        return Backends.CUDA.callForInt("ambient_device_count", Backends.CUDA.api::ambient_device_count);
    }

    /** Every device that answers now: the CPU first, then each CUDA GPU. */
    public static List<Device> available() {
        List<Device> devices = new ArrayList<>();
        devices.add(cpu());
        if (cudaProblem() == null) {
            for (int i = 0, n = cudaDeviceCount(); i < n; i++) devices.add(cuda(i));
        }
        return devices;
    }

    /**
     * The device to use: forced by {@code AMBIENT_DEVICE} / {@code -Dambient.device}, else
     * CUDA device 0 when one answers, else the CPU.
     */
    public static Device auto() {
        String forced = System.getProperty(DEVICE_PROPERTY, System.getenv(DEVICE_VARIABLE));
        if (forced != null && !forced.isBlank()) {
            Device device = parse(forced.strip());
            LOG.log(System.Logger.Level.INFO, "Ambient device: " + device + " (forced by " + DEVICE_VARIABLE + "=" + forced + ")");
            return device;
        }
        CudaState cuda = cudaState();
        if (cuda.refusedSettings()) {
            throw new IllegalStateException("the CUDA library refuses its configuration: " + Backends.CUDA.lastError()
                    + "; fix the setting, or force the CPU with " + DEVICE_VARIABLE + "=cpu");
        }
        String problem = cuda.problem();
        if (problem == null && !Backends.CUDA.api.missingFunctions().isEmpty()) {
            problem = "the CUDA library does not implement " + Backends.CUDA.api.missingFunctions().size()
                    + " functions of ambient.h yet (" + String.join(", ", Backends.CUDA.api.missingFunctions())
                    + "); use AMBIENT_DEVICE=cuda to run it anyway";
        }
        if (problem == null) {
            Device device = cuda(0);
            LOG.log(System.Logger.Level.INFO, "Ambient device: " + device + " (a CUDA device answers)");
            LOG.log(System.Logger.Level.WARNING, "Ambient's CUDA kernels are compiled but have not yet been validated on a GPU "
                    + "by this project (benchmarks/gpu/check.sh runs the CPU-vs-CUDA parity harness); AMBIENT_DEVICE=cpu forces the CPU");
            return device;
        }
        Device device = cpu();
        LOG.log(System.Logger.Level.INFO, "Ambient device: " + device + " (CUDA refused: " + problem + ")");
        return device;
    }

    /** Parses {@code cpu}, {@code cuda} or {@code cuda:N}. */
    public static Device parse(String text) {
        String t = text.toLowerCase(Locale.ROOT);
        if (t.equals("cpu")) return cpu();
        if (t.equals("cuda")) return cuda(0);
        if (t.startsWith("cuda:")) {
            try {
                return cuda(Integer.parseInt(t.substring(5)));
            } catch (NumberFormatException e) {
                // fall through to the error below
            }
        }
        throw new IllegalArgumentException("unknown device '" + text + "': expected cpu, cuda or cuda:N");
    }

    private static String deviceName(Backend backend, int index) {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment buffer = arena.allocate(256);
            backend.check(backend.api.ambient_device_name(index, buffer, buffer.byteSize()), "ambient_device_name", "device " + index);
            return buffer.getString(0);
        }
    }

    // ---- Properties -----------------------------------------------------------------------

    public Kind kind() {
        return backend.kind;
    }

    /** The device number within its backend (0 for the CPU). */
    public int index() {
        return index;
    }

    /** What the library says the device is, e.g. the processor's model or the GPU's name. */
    public String name() {
        return name;
    }

    /** The path of the native library that runs this device's kernels. */
    public java.nio.file.Path libraryPath() {
        return backend.path;
    }

    /** Free and total memory of the device, in bytes. */
    public long[] memory() {
        try (Arena arena = Arena.ofConfined()) {
            MemorySegment free = arena.allocate(ValueLayout.JAVA_LONG), total = arena.allocate(ValueLayout.JAVA_LONG);
            backend.check(backend.api.ambient_device_memory(index, free, total), "ambient_device_memory", "device " + index);
            return new long[] {free.get(ValueLayout.JAVA_LONG, 0), total.get(ValueLayout.JAVA_LONG, 0)};
        }
    }

    /**
     * The precision of this device's matrix products: FP32 on the CPU; on CUDA the one that
     * {@code AMBIENT_CUDA_MATMUL} chose (bf16 unless it is set).
     */
    public MatmulPrecision matmulPrecision() {
        activate();
        int precision = backend.callForInt("ambient_matmul_precision", backend.api::ambient_matmul_precision);
        return switch (precision) {
            case AmbientNative.AMBIENT_PRECISION_FP32 -> MatmulPrecision.FP32;
            case AmbientNative.AMBIENT_PRECISION_TF32 -> MatmulPrecision.TF32;
            case AmbientNative.AMBIENT_PRECISION_BF16 -> MatmulPrecision.BF16;
            default -> throw new IllegalStateException(this + " reports an unknown matmul precision " + precision);
        };
    }

    /** Worker threads of CPU kernels (1 for a GPU). */
    public int threads() {
        activate();
        return backend.callForInt("ambient_threads_get", backend.api::ambient_threads_get);
    }

    /** Sets the CPU kernels' worker threads; 0 restores the default (OMP_NUM_THREADS or all cores). */
    public void setThreads(int threads) {
        if (threads < 0) throw new IllegalArgumentException("threads = " + threads + " is negative");
        backend.call("ambient_threads_set", "threads " + threads, () -> backend.api.ambient_threads_set(threads));
    }

    /** Waits until every kernel queued on this device has finished. */
    public void synchronize() {
        activate();
        backend.call("ambient_device_synchronize", toString(), backend.api::ambient_device_synchronize);
    }

    /** FMA throughput of the whole device in GFLOP/s, measured for about {@code seconds}. */
    public double measureFmaPeak(double seconds) {
        activate();
        return backend.callForDouble("ambient_benchmark_fma_peak", out -> backend.api.ambient_benchmark_fma_peak(seconds, out));
    }

    /** Copy bandwidth in GB/s (bytes read plus written) over a working set of {@code bytes}. */
    public double measureMemoryBandwidth(long bytes, double seconds) {
        activate();
        return backend.callForDouble("ambient_benchmark_memory_bandwidth",
                out -> backend.api.ambient_benchmark_memory_bandwidth(bytes, seconds, out));
    }

    /**
     * Rate of this device's own matrix multiply on an {@code n}^3 problem, GFLOP/s, measured for
     * about {@code seconds}: float32 on the CPU; on CUDA the precision of its matrix products
     * ({@code AMBIENT_CUDA_MATMUL}, bf16 tensor cores by default), the ceiling convolutions are
     * read against. {@code n} in [64, 16384].
     */
    public double measureMatmulPeak(long n, double seconds) {
        activate();
        return backend.callForDouble("ambient_benchmark_matmul_peak",
                out -> backend.api.ambient_benchmark_matmul_peak(n, seconds, out));
    }

    Backend backend() {
        return backend;
    }

    /** Makes this device current for the calling thread before a native call. */
    void activate() {
        if (backend.kind != Kind.CUDA || SELECTED_CUDA.get() == index) return;
        backend.call("ambient_device_select", toString(), () -> backend.api.ambient_device_select(index));
        SELECTED_CUDA.set(index);
    }

    @Override
    public String toString() {
        return (backend.kind == Kind.CPU ? "cpu" : "cuda:" + index) + " [" + name + "]";
    }
}
