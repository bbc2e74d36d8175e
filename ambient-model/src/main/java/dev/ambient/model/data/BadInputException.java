package dev.ambient.model.data;

import java.io.IOException;

/**
 * A dataset or annotation input that cannot be used: an unreadable image, a record of the wrong
 * size, malformed JSON, a missing label. The message always names the file and, where there is
 * one, the entry inside it (a zip member, an image's relative path) or the line number, so a user
 * can find the culprit without a debugger.
 */
public final class BadInputException extends IOException {

    private final String file;
    private final String entry;
    private final long line;

    private BadInputException(String file, String entry, long line, String reason, Throwable cause) {
        super(file + (entry != null ? ": " + entry : "") + (line > 0 ? ":" + line : "") + ": " + reason, cause);
        this.file = file;
        this.entry = entry;
        this.line = line;
    }

    /** A problem with a whole file. */
    public static BadInputException of(Object file, String reason) {
        return new BadInputException(String.valueOf(file), null, 0, reason, null);
    }

    /** A problem with one entry of a file (a member of a zip, an image in a folder, a record). */
    public static BadInputException atEntry(Object file, String entry, String reason, Throwable cause) {
        return new BadInputException(String.valueOf(file), entry, 0, reason, cause);
    }

    /** A problem on one line (1-based) of a text file. */
    public static BadInputException atLine(Object file, long line, String reason, Throwable cause) {
        return new BadInputException(String.valueOf(file), null, line, reason, cause);
    }

    /** The file named in the message. */
    public String file() { return file; }

    /** The entry inside the file, or null. */
    public String entry() { return entry; }

    /** The 1-based line number, or 0 when the problem is not on one line. */
    public long line() { return line; }
}
