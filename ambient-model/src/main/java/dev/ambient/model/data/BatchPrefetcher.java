package dev.ambient.model.data;

import java.util.Objects;
import java.util.concurrent.ArrayBlockingQueue;
import java.util.concurrent.BlockingQueue;

/**
 * Prepares the next batches on a background thread while the caller computes with the current
 * one. The producer is called on that one thread, strictly in order, so a deterministic
 * producer (a seeded sampler plus a dataset) yields the same sequence as calling it inline; at
 * most {@code depth} prepared batches wait in the queue (1 or 2 is enough to hide loading behind
 * a training step, and bounds memory).
 *
 * <p>Because the producer runs ahead, its own state (e.g. a sampler's position) is up to
 * {@code depth + 1} batches ahead of what the caller has consumed; to checkpoint a position, let
 * each batch carry the producer's state as of that batch.
 *
 * <p>If the producer throws, {@link #next()} throws a {@link Failure} with that exception as its
 * cause once the batches prepared before it are consumed, and every later call throws it too.
 * {@link #close()} stops the thread and waits for it; a producer that ignores interruption is
 * let finish its current batch.
 *
 * @param <T> the batch type
 */
public final class BatchPrefetcher<T> implements AutoCloseable {

    /** Prepares one batch; may throw anything, which reaches the consumer. */
    @FunctionalInterface
    public interface Producer<T> {
        T produce() throws Exception;
    }

    /** The producer failed; the cause is its exception. */
    public static final class Failure extends RuntimeException {
        Failure(Throwable cause) {
            super("batch preparation failed on the prefetch thread: " + cause, cause);
        }
    }

    private sealed interface Item<T> permits Ready, Failed {}
    private record Ready<T>(T batch) implements Item<T> {}
    private record Failed<T>(Throwable error) implements Item<T> {}

    private final BlockingQueue<Item<T>> queue;
    private final Thread thread;
    private volatile boolean closed;
    private Failure failure;

    /** Starts preparing batches at once. */
    public BatchPrefetcher(Producer<T> producer, int depth) {
        this(producer, depth, "ambient-prefetch");
    }

    /** Starts preparing batches at once, on a daemon thread of this name. */
    public BatchPrefetcher(Producer<T> producer, int depth, String threadName) {
        Objects.requireNonNull(producer, "producer");
        if (depth < 1) throw new IllegalArgumentException("depth must be at least 1, got " + depth);
        this.queue = new ArrayBlockingQueue<>(depth);
        this.thread = Thread.ofPlatform().name(threadName).daemon(true).unstarted(() -> run(producer));
        thread.start();
    }

    private void run(Producer<T> producer) {
        try {
            while (!closed) {
                T batch = producer.produce();
                queue.put(new Ready<>(batch));
            }
        } catch (InterruptedException e) {
            // closed while waiting for room in the queue
        } catch (Throwable t) {
            if (closed) return;
            try {
                queue.put(new Failed<>(t));
            } catch (InterruptedException ignored) {
                // closed while reporting; nobody is left to tell
            }
        }
    }

    /** The next batch, waiting for it if it is not ready yet. */
    public T next() {
        if (failure != null) throw failure;
        if (closed) throw new IllegalStateException("the prefetcher is closed");
        Item<T> item;
        try {
            item = queue.take();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            throw new IllegalStateException("interrupted while waiting for the next batch", e);
        }
        return switch (item) {
            case Ready<T> r -> r.batch();
            case Failed<T> f -> throw failure = new Failure(f.error());
        };
    }

    /** Stops the background thread and drops prepared batches. Idempotent. */
    @Override
    public void close() {
        if (closed) return;
        closed = true;
        thread.interrupt();
        queue.clear(); // frees a producer blocked on a full queue even if it swallowed the interrupt
        boolean interrupted = false;
        while (thread.isAlive()) {
            try {
                thread.join();
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        queue.clear();
        if (interrupted) Thread.currentThread().interrupt();
    }
}
