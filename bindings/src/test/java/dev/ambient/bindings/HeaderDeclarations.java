package dev.ambient.bindings;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * What a constrained C header declares, read with a small parser of the tests' own (regular
 * expressions over the comment-free text, not the generator's code): the functions whose names
 * start with a prefix, with their descriptors, and the integer constants (enumerators and
 * #defines) whose names start with another.
 */
record HeaderDeclarations(Map<String, FunctionDescriptor> functions, Map<String, Integer> constants) {

    static HeaderDeclarations parse(Path header, String functionPrefix, String constantPrefix) throws IOException {
        String code = Files.readString(header).replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\n]*", " ");
        Pattern prototype = Pattern.compile("^\\s*([A-Za-z_][\\w\\s]*?\\**)\\s*(" + functionPrefix
                + "\\w+)\\s*\\(([^)]*)\\)\\s*;", Pattern.MULTILINE);
        Map<String, FunctionDescriptor> functions = new LinkedHashMap<>();
        Matcher m = prototype.matcher(code);
        while (m.find()) {
            List<MemoryLayout> arguments = new ArrayList<>();
            String params = m.group(3).trim();
            if (!params.equals("void")) {
                for (String p : params.split(",")) {
                    String type = p.trim().replaceAll("\\w+$", "").trim();
                    arguments.add(layoutOf(type, header));
                }
            }
            String ret = m.group(1).trim();
            functions.put(m.group(2), ret.equals("void")
                    ? FunctionDescriptor.ofVoid(arguments.toArray(MemoryLayout[]::new))
                    : FunctionDescriptor.of(layoutOf(ret, header), arguments.toArray(MemoryLayout[]::new)));
        }
        Map<String, Integer> constants = new LinkedHashMap<>();
        for (Pattern p : List.of(
                Pattern.compile("\\b(" + constantPrefix + "[A-Z0-9_]*)\\s*=\\s*(-?\\d+)"),
                Pattern.compile("#define\\s+(" + constantPrefix + "[A-Z0-9_]*)\\s+(-?\\d+)"))) {
            Matcher c = p.matcher(code);
            while (c.find()) constants.put(c.group(1), Integer.parseInt(c.group(2)));
        }
        return new HeaderDeclarations(functions, constants);
    }

    private static MemoryLayout layoutOf(String cType, Path header) {
        if (cType.contains("*")) return ValueLayout.ADDRESS;
        return switch (cType.replace("const", "").trim()) {
            case "int", "int32_t" -> ValueLayout.JAVA_INT;
            case "int64_t", "size_t" -> ValueLayout.JAVA_LONG;
            case "float" -> ValueLayout.JAVA_FLOAT;
            case "double" -> ValueLayout.JAVA_DOUBLE;
            default -> throw new AssertionError("unexpected C type in " + header.getFileName() + ": " + cType);
        };
    }

    static Class<?> carrierOf(MemoryLayout layout) {
        return layout instanceof ValueLayout v ? v.carrier() : MemorySegment.class;
    }
}
