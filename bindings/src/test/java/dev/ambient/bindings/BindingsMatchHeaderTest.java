package dev.ambient.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Reads ambient.h with its own small parser (regular expressions over the comment-free text,
 * not the generator's code) and checks that the generated class binds every declared function
 * with the right descriptor and Java signature, and every constant with its value.
 */
class BindingsMatchHeaderTest {

    private static final Pattern PROTOTYPE = Pattern.compile(
            "^\\s*([A-Za-z_][\\w\\s]*?\\**)\\s*(ambient_\\w+)\\s*\\(([^)]*)\\)\\s*;", Pattern.MULTILINE);
    private static final Pattern ENUMERATOR = Pattern.compile("\\b(AMBIENT_[A-Z0-9_]+)\\s*=\\s*(-?\\d+)");
    private static final Pattern DEFINE = Pattern.compile("#define\\s+(AMBIENT_[A-Z0-9_]+)\\s+(-?\\d+)");

    private static Map<String, FunctionDescriptor> declared;
    private static Map<String, Integer> constants;

    @BeforeAll
    static void parseHeader() throws IOException {
        String header = Files.readString(Path.of(System.getProperty("ambient.header", "../native/include/ambient.h")));
        String code = header.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\n]*", " ");
        declared = new LinkedHashMap<>();
        Matcher m = PROTOTYPE.matcher(code);
        while (m.find()) {
            List<MemoryLayout> arguments = new ArrayList<>();
            String params = m.group(3).trim();
            if (!params.equals("void")) {
                for (String p : params.split(",")) {
                    String type = p.trim().replaceAll("\\w+$", "").trim();
                    arguments.add(layoutOf(type));
                }
            }
            String ret = m.group(1).trim();
            declared.put(m.group(2), ret.equals("void")
                    ? FunctionDescriptor.ofVoid(arguments.toArray(MemoryLayout[]::new))
                    : FunctionDescriptor.of(layoutOf(ret), arguments.toArray(MemoryLayout[]::new)));
        }
        constants = new LinkedHashMap<>();
        for (Pattern p : List.of(ENUMERATOR, DEFINE)) {
            Matcher c = p.matcher(code);
            while (c.find()) constants.put(c.group(1), Integer.parseInt(c.group(2)));
        }
    }

    private static MemoryLayout layoutOf(String cType) {
        if (cType.contains("*")) return ValueLayout.ADDRESS;
        return switch (cType.replace("const", "").trim()) {
            case "int", "int32_t" -> ValueLayout.JAVA_INT;
            case "int64_t", "size_t" -> ValueLayout.JAVA_LONG;
            case "float" -> ValueLayout.JAVA_FLOAT;
            case "double" -> ValueLayout.JAVA_DOUBLE;
            default -> throw new AssertionError("unexpected C type in ambient.h: " + cType);
        };
    }

    private static Class<?> carrierOf(MemoryLayout layout) {
        return layout instanceof ValueLayout v ? v.carrier() : MemorySegment.class;
    }

    @Test
    void theHeaderDeclaresTheFunctionsWeExpect() {
        assertTrue(declared.size() >= 20, "parsed only " + declared.size() + " functions");
        assertTrue(declared.containsKey("ambient_gemm"));
        assertTrue(declared.containsKey("ambient_last_error"));
    }

    @Test
    void everyDeclaredFunctionIsBoundWithItsDescriptor() {
        assertEquals(List.copyOf(declared.keySet()), List.copyOf(AmbientNative.FUNCTIONS.keySet()),
                "functions in ambient.h vs. the generated bindings");
        declared.forEach((name, descriptor) ->
                assertEquals(descriptor, AmbientNative.FUNCTIONS.get(name), "descriptor of " + name));
    }

    @Test
    void everyDeclaredFunctionHasAJavaMethodWithMatchingTypes() throws NoSuchMethodException {
        for (var entry : declared.entrySet()) {
            FunctionDescriptor d = entry.getValue();
            Class<?>[] parameters = d.argumentLayouts().stream()
                    .map(BindingsMatchHeaderTest::carrierOf).toArray(Class<?>[]::new);
            Method method = AmbientNative.class.getMethod(entry.getKey(), parameters);
            Class<?> expectedReturn = d.returnLayout().map(BindingsMatchHeaderTest::carrierOf).orElse(void.class);
            assertEquals(expectedReturn, method.getReturnType(), "return type of " + entry.getKey());
            assertFalse(Modifier.isStatic(method.getModifiers()), entry.getKey() + " must be an instance method");
        }
    }

    @Test
    void everyConstantHasItsValue() throws ReflectiveOperationException {
        assertTrue(constants.containsKey("AMBIENT_STATUS_OK"));
        for (var entry : constants.entrySet()) {
            var field = AmbientNative.class.getField(entry.getKey());
            assertNotNull(field);
            assertEquals(entry.getValue(), field.getInt(null), entry.getKey());
        }
    }

    @Test
    void anEmptyLookupBindsNothingAndSaysSo() {
        var bindings = new AmbientNative(name -> java.util.Optional.empty());
        assertEquals(List.copyOf(declared.keySet()), bindings.missingFunctions());
        var error = org.junit.jupiter.api.Assertions.assertThrows(UnsatisfiedLinkError.class,
                bindings::ambient_library_version);
        assertTrue(error.getMessage().contains("ambient_library_version"), error.getMessage());
    }
}
