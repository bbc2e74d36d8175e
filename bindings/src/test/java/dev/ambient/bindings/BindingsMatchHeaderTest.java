package dev.ambient.bindings;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.reflect.Method;
import java.lang.reflect.Modifier;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Reads ambient.h with the tests' own small parser ({@link HeaderDeclarations}, not the
 * generator's code) and checks that the generated class binds every declared function with the
 * right descriptor and Java signature, and every constant with its value.
 */
class BindingsMatchHeaderTest {

    private static Map<String, FunctionDescriptor> declared;
    private static Map<String, Integer> constants;

    @BeforeAll
    static void parseHeader() throws IOException {
        var header = HeaderDeclarations.parse(
                Path.of(System.getProperty("ambient.header", "../native/include/ambient.h")), "ambient_", "AMBIENT_");
        declared = header.functions();
        constants = header.constants();
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
                    .map(HeaderDeclarations::carrierOf).toArray(Class<?>[]::new);
            Method method = AmbientNative.class.getMethod(entry.getKey(), parameters);
            Class<?> expectedReturn = d.returnLayout().map(HeaderDeclarations::carrierOf).orElse(void.class);
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
