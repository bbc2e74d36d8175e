/*
 * Writes the Panama (FFM) binding class for native/include/ambient.h.
 *
 *   java BindingsGenerator.java HEADER OUTPUT_DIR PACKAGE CLASS [LIBRARY]
 *
 * Maven runs it at generate-sources (bindings/pom.xml) with the JDK's source launcher, so it
 * needs no build of its own. It understands the constrained C that ambient.h is written in:
 * `#define NAME integer`, `typedef enum name { A = 0, ... } name;`, and function declarations
 * over int32_t/int64_t/int/float/double/void and pointers. Anything else is an error that
 * names the header line, so that the header cannot drift into C the bindings silently skip.
 *
 * The output has the shape jextract gives (a descriptor and a method per function), but the
 * method handles are fields of an instance built over a SymbolLookup: one class binds either
 * libambient_cpu.so or libambient_cuda.so. The same generator binds the subsets of cuBLAS and
 * cuDNN declared in native/include/vendor/ (written in the same constrained C); LIBRARY, when
 * given, says in the class's javadoc what an instance binds (default: "one library (CPU or
 * CUDA backend)", the text of ambient.h's class).
 */
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

public final class BindingsGenerator {

    record Constant(String name, long value, String comment) {}

    record Parameter(String cType, String name) {}

    record Function(String returnType, String name, List<Parameter> parameters, String comment, int line) {}

    /** A C type of the constrained header and what it becomes in Java. */
    record JavaType(String layout, String javaType) {}

    private static final Map<String, JavaType> SCALARS = Map.of(
            "int32_t", new JavaType("ValueLayout.JAVA_INT", "int"),
            "int", new JavaType("ValueLayout.JAVA_INT", "int"),
            "int64_t", new JavaType("ValueLayout.JAVA_LONG", "long"),
            "size_t", new JavaType("ValueLayout.JAVA_LONG", "long"),
            "float", new JavaType("ValueLayout.JAVA_FLOAT", "float"),
            "double", new JavaType("ValueLayout.JAVA_DOUBLE", "double"));
    private static final JavaType POINTER = new JavaType("ValueLayout.ADDRESS", "MemorySegment");

    private static final Pattern DEFINE = Pattern.compile("#\\s*define\\s+([A-Z_][A-Z0-9_]*)\\s+(-?\\d+)\\s*");
    private static final Pattern ENUM = Pattern.compile(
            "typedef\\s+enum\\s+(\\w+)?\\s*\\{(.*)}\\s*(\\w+)", Pattern.DOTALL);
    private static final Pattern ENUMERATOR = Pattern.compile("\\s*([A-Z_][A-Z0-9_]*)\\s*=\\s*(-?\\d+)\\s*");
    private static final Pattern FUNCTION = Pattern.compile(
            "((?:const\\s+)?\\w+(?:\\s*\\*)*)\\s*\\b(\\w+)\\s*\\((.*)\\)", Pattern.DOTALL);

    private final List<Constant> constants = new ArrayList<>();
    private final List<Function> functions = new ArrayList<>();
    private final String headerName;

    private BindingsGenerator(String headerName) {
        this.headerName = headerName;
    }

    public static void main(String[] args) throws IOException {
        if (args.length != 4 && args.length != 5) {
            System.err.println("usage: java BindingsGenerator.java HEADER OUTPUT_DIR PACKAGE CLASS [LIBRARY]");
            System.exit(2);
        }
        Path header = Path.of(args[0]);
        var generator = new BindingsGenerator(header.getFileName().toString());
        try {
            generator.parse(Files.readAllLines(header));
        } catch (IllegalArgumentException e) {
            System.err.println(header + ": " + e.getMessage());
            System.exit(1);
        }
        String library = args.length == 5 ? args[4] : "one library (CPU or CUDA backend)";
        String source = generator.render(args[2], args[3], library);
        Path dir = Path.of(args[1]).resolve(args[2].replace('.', '/'));
        Files.createDirectories(dir);
        Path out = dir.resolve(args[3] + ".java");
        // Rewrite only on change, so that incremental builds do not recompile everything.
        if (Files.exists(out) && Files.readString(out).equals(source)) return;
        Path tmp = Files.createTempFile(dir, args[3], ".tmp");
        Files.writeString(tmp, source);
        Files.move(tmp, out, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        System.out.println("generated " + out + ": " + generator.functions.size() + " functions, "
                + generator.constants.size() + " constants");
    }

    // ---- Parsing --------------------------------------------------------------------------

    /** Splits the header into statements, keeping the comment just before each one. */
    private void parse(List<String> lines) {
        StringBuilder statement = new StringBuilder();
        String pendingComment = null;
        StringBuilder comment = null;
        int statementLine = 0;
        int cplusplusDepth = 0; // inside #ifdef __cplusplus ... #endif
        int conditionalDepth = 0;

        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            int lineNumber = i + 1;
            String trimmed = line.strip();
            if (comment == null && trimmed.isEmpty() && statement.toString().isBlank()) {
                pendingComment = null; // a comment only documents what follows it directly
                continue;
            }
            if (comment == null && trimmed.startsWith("#")) {
                String directive = trimmed.substring(1).strip();
                if (!directive.startsWith("define")) pendingComment = null;
                if (directive.startsWith("ifdef __cplusplus")) {
                    cplusplusDepth = ++conditionalDepth;
                } else if (directive.startsWith("if")) {
                    conditionalDepth++;
                } else if (directive.startsWith("endif")) {
                    if (conditionalDepth == cplusplusDepth) cplusplusDepth = 0;
                    conditionalDepth--;
                } else if (cplusplusDepth == 0 && directive.startsWith("define")) {
                    Matcher m = DEFINE.matcher(trimmed);
                    if (m.matches()) {
                        constants.add(new Constant(m.group(1), Long.parseLong(m.group(2)), pendingComment));
                    } else if (!trimmed.matches("#\\s*define\\s+\\w+_H\\s*")) {
                        throw new IllegalArgumentException("line " + lineNumber
                                + ": only integer #defines are supported: " + trimmed);
                    }
                    pendingComment = null;
                }
                continue;
            }
            if (cplusplusDepth != 0) continue;

            int pos = 0;
            while (pos < line.length()) {
                if (comment != null) {
                    int end = line.indexOf("*/", pos);
                    if (end < 0) {
                        comment.append(line, pos, line.length()).append('\n');
                        pos = line.length();
                    } else {
                        comment.append(line, pos, end);
                        pendingComment = comment.toString();
                        comment = null;
                        pos = end + 2;
                    }
                } else if (line.startsWith("/*", pos)) {
                    comment = new StringBuilder();
                    pos += 2;
                } else if (line.startsWith("//", pos)) {
                    pendingComment = line.substring(pos + 2);
                    pos = line.length();
                } else {
                    char c = line.charAt(pos++);
                    if (c == ';') {
                        handleStatement(statement.toString(), pendingComment, statementLine);
                        statement.setLength(0);
                        pendingComment = null;
                    } else {
                        if (statement.toString().isBlank() && !Character.isWhitespace(c)) statementLine = lineNumber;
                        statement.append(c);
                    }
                }
            }
            statement.append('\n');
        }
        if (!statement.toString().isBlank()) {
            throw new IllegalArgumentException("line " + statementLine + ": unterminated declaration: "
                    + statement.toString().strip());
        }
    }

    private void handleStatement(String text, String comment, int line) {
        String s = text.strip().replaceAll("\\s+", " ");
        if (s.isEmpty()) return;
        if (s.startsWith("typedef enum")) {
            Matcher m = ENUM.matcher(s);
            if (!m.matches()) throw new IllegalArgumentException("line " + line + ": cannot read enum: " + s);
            for (String item : m.group(2).split(",")) {
                if (item.isBlank()) continue;
                Matcher e = ENUMERATOR.matcher(item);
                if (!e.matches()) {
                    throw new IllegalArgumentException("line " + line
                            + ": enumerators need explicit integer values: " + item.strip());
                }
                constants.add(new Constant(e.group(1), Long.parseLong(e.group(2)), null));
            }
            return;
        }
        Matcher m = FUNCTION.matcher(s);
        if (!m.matches()) throw new IllegalArgumentException("line " + line + ": not a function declaration: " + s);
        String returnType = m.group(1).strip();
        javaTypeOf(returnType, true, line);
        List<Parameter> parameters = new ArrayList<>();
        String params = m.group(3).strip();
        if (!params.equals("void") && !params.isEmpty()) {
            for (String p : params.split(",")) {
                Matcher pm = Pattern.compile("(.*?)\\s*\\b(\\w+)").matcher(p.strip());
                if (!pm.matches() || pm.group(1).isBlank()) {
                    throw new IllegalArgumentException("line " + line + ": parameters need a type and a name: " + p.strip());
                }
                javaTypeOf(pm.group(1), false, line);
                parameters.add(new Parameter(pm.group(1).strip(), pm.group(2)));
            }
        }
        functions.add(new Function(returnType, m.group(2), parameters, comment, line));
    }

    private static JavaType javaTypeOf(String cType, boolean isReturn, int line) {
        String t = cType.replace("const", "").strip();
        if (t.contains("*")) return POINTER;
        if (t.equals("void")) {
            if (isReturn) return null;
            throw new IllegalArgumentException("line " + line + ": a parameter cannot be void");
        }
        JavaType type = SCALARS.get(t);
        if (type == null) throw new IllegalArgumentException("line " + line + ": unsupported C type '" + cType + "'");
        return type;
    }

    // ---- Rendering ------------------------------------------------------------------------

    private String render(String packageName, String className, String library) {
        StringBuilder out = new StringBuilder();
        out.append("// Generated from ").append(headerName)
                .append(" by bindings/generator/BindingsGenerator.java. Do not edit.\n");
        out.append("package ").append(packageName).append(";\n\n");
        out.append("""
                import java.lang.foreign.FunctionDescriptor;
                import java.lang.foreign.Linker;
                import java.lang.foreign.MemorySegment;
                import java.lang.foreign.SymbolLookup;
                import java.lang.foreign.ValueLayout;
                import java.lang.invoke.MethodHandle;
                import java.util.ArrayList;
                import java.util.Collections;
                import java.util.LinkedHashMap;
                import java.util.List;
                import java.util.Map;

                /**
                 * Bindings of {@code %1$s}: its constants, one descriptor and one method per function.
                 * An instance binds the functions of %3$s found through
                 * the {@link SymbolLookup} it is built over. A function the library does not export
                 * is reported by {@link #missingFunctions()} and throws {@link UnsatisfiedLinkError}
                 * when called.
                 */
                public final class %2$s {
                """.formatted(headerName, className, library));
        for (Constant c : constants) {
            if (c.comment() != null) out.append(javadoc(c.comment(), "    "));
            out.append("    public static final int ").append(c.name()).append(" = ").append(c.value()).append(";\n");
        }
        out.append('\n');
        for (Function f : functions) {
            out.append("    public static final FunctionDescriptor ").append(f.name()).append("$DESCRIPTOR = ")
                    .append(descriptor(f)).append(";\n");
        }
        out.append("\n    /** Every function of the header with its descriptor, in declaration order. */\n");
        out.append("    public static final Map<String, FunctionDescriptor> FUNCTIONS;\n\n    static {\n");
        out.append("        Map<String, FunctionDescriptor> functions = new LinkedHashMap<>();\n");
        for (Function f : functions) {
            out.append("        functions.put(\"").append(f.name()).append("\", ").append(f.name()).append("$DESCRIPTOR);\n");
        }
        out.append("        FUNCTIONS = Collections.unmodifiableMap(functions);\n    }\n\n");
        for (Function f : functions) {
            out.append("    private final MethodHandle ").append(f.name()).append("$handle;\n");
        }
        out.append("    private final List<String> missing;\n\n");
        out.append("    /** Binds every function of the header that {@code lookup} finds. */\n");
        out.append("    public ").append(className).append("(SymbolLookup lookup) {\n");
        out.append("        Linker linker = Linker.nativeLinker();\n");
        out.append("        List<String> missing = new ArrayList<>();\n");
        for (Function f : functions) {
            out.append("        ").append(f.name()).append("$handle = bind(lookup, linker, \"").append(f.name())
                    .append("\", ").append(f.name()).append("$DESCRIPTOR, missing);\n");
        }
        out.append("        this.missing = List.copyOf(missing);\n    }\n\n");
        out.append("""
                    /** Names of the header's functions that the library does not export. */
                    public List<String> missingFunctions() {
                        return missing;
                    }

                    private static MethodHandle bind(SymbolLookup lookup, Linker linker, String name,
                            FunctionDescriptor descriptor, List<String> missing) {
                        var symbol = lookup.find(name);
                        if (symbol.isEmpty()) {
                            missing.add(name);
                            return null;
                        }
                        return linker.downcallHandle(symbol.get(), descriptor);
                    }

                    private static MethodHandle require(MethodHandle handle, String name) {
                        if (handle == null) throw new UnsatisfiedLinkError(name + " is not exported by this library");
                        return handle;
                    }

                    private static RuntimeException rethrow(Throwable t) {
                        if (t instanceof RuntimeException r) return r;
                        if (t instanceof Error e) throw e;
                        return new IllegalStateException(t);
                    }

                """);
        for (Function f : functions) renderMethod(out, f);
        out.append("}\n");
        return out.toString();
    }

    private static String descriptor(Function f) {
        List<String> layouts = new ArrayList<>();
        for (Parameter p : f.parameters()) layouts.add(javaTypeOf(p.cType(), false, f.line()).layout());
        JavaType ret = javaTypeOf(f.returnType(), true, f.line());
        if (ret == null) return "FunctionDescriptor.ofVoid(" + String.join(", ", layouts) + ")";
        layouts.addFirst(ret.layout());
        return "FunctionDescriptor.of(" + String.join(", ", layouts) + ")";
    }

    private static void renderMethod(StringBuilder out, Function f) {
        JavaType ret = javaTypeOf(f.returnType(), true, f.line());
        String javaReturn = ret == null ? "void" : ret.javaType();
        List<String> params = new ArrayList<>(), names = new ArrayList<>(), cParams = new ArrayList<>();
        for (Parameter p : f.parameters()) {
            params.add(javaTypeOf(p.cType(), false, f.line()).javaType() + " " + p.name());
            names.add(p.name());
            cParams.add(p.cType() + " " + p.name());
        }
        String signature = f.returnType() + " " + f.name() + "(" + (cParams.isEmpty() ? "void" : String.join(", ", cParams)) + ")";
        String doc = (f.comment() == null ? "" : f.comment().strip() + "\n\n") + "C: " + signature;
        out.append(javadoc(doc, "    "));
        out.append("    public ").append(javaReturn).append(' ').append(f.name()).append('(')
                .append(String.join(", ", params)).append(") {\n");
        // Locals end in $ so that they cannot clash with C parameter names.
        out.append("        MethodHandle handle$ = require(").append(f.name()).append("$handle, \"").append(f.name()).append("\");\n");
        out.append("        try {\n            ");
        if (ret != null) out.append("return (").append(javaReturn).append(") ");
        out.append("handle$.invokeExact(").append(String.join(", ", names)).append(");\n");
        out.append("        } catch (Throwable failure$) {\n            throw rethrow(failure$);\n        }\n    }\n\n");
    }

    /** The comment text as javadoc, with HTML and javadoc's own markers escaped. */
    private static String javadoc(String text, String indent) {
        StringBuilder out = new StringBuilder(indent).append("/**\n");
        for (String line : text.strip().split("\n")) {
            String l = line.strip();
            if (l.startsWith("*")) l = l.substring(1).strip();
            l = l.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
                    .replace("@", "&#64;").replace("*/", "*&#47;");
            out.append(indent).append(l.isEmpty() ? " *" : " * " + l).append('\n');
        }
        return out.append(indent).append(" */\n").toString();
    }
}
