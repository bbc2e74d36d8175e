package dev.ambient.benchmarks;

import dev.ambient.kernels.Device;

/** The device a benchmark runs on: {@code auto} (Device.auto()) or a name Device.parse() takes. */
final class BenchDevices {

    private BenchDevices() {}

    static Device resolve(String name) {
        return name == null || name.equals("auto") ? Device.auto() : Device.parse(name);
    }
}
