package dev.ambient.model.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.util.SplittableRandom;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicInteger;
import org.junit.jupiter.api.Test;

/** The background prefetcher: order, bounded look-ahead, failure propagation, close. */
class BatchPrefetcherTest {

    @Test
    void yieldsTheProducersSequenceInOrder() {
        long seed = System.nanoTime();
        System.out.println("random seed " + seed);
        SplittableRandom inline = new SplittableRandom(seed), background = new SplittableRandom(seed);
        try (var prefetcher = new BatchPrefetcher<>(background::nextLong, 2)) {
            for (int k = 0; k < 1000; k++) assertEquals(inline.nextLong(), prefetcher.next());
        }
    }

    @Test
    void looksAheadAtMostDepthPlusOne() throws InterruptedException {
        AtomicInteger produced = new AtomicInteger();
        CountDownLatch started = new CountDownLatch(3);
        try (var prefetcher = new BatchPrefetcher<>(() -> {
            int v = produced.incrementAndGet();
            started.countDown();
            return v;
        }, 2)) {
            started.await();
            // two batches in the queue and a third waiting for room: a fourth cannot start before a take
            assertEquals(3, produced.get());
            assertEquals(1, prefetcher.next());
            assertEquals(2, prefetcher.next());
        }
    }

    @Test
    void producerFailureReachesTheConsumerAfterEarlierBatches() {
        AtomicInteger n = new AtomicInteger();
        IOException boom = new IOException("disk on fire");
        try (var prefetcher = new BatchPrefetcher<>(() -> {
            if (n.get() == 3) throw boom;
            return n.getAndIncrement();
        }, 1)) {
            assertEquals(0, prefetcher.next());
            assertEquals(1, prefetcher.next());
            assertEquals(2, prefetcher.next());
            var e = assertThrows(BatchPrefetcher.Failure.class, prefetcher::next);
            assertSame(boom, e.getCause());
            assertSame(e, assertThrows(BatchPrefetcher.Failure.class, prefetcher::next));
        }
    }

    @Test
    void closeStopsABlockedProducerAndRefusesFurtherUse() {
        var prefetcher = new BatchPrefetcher<>(() -> new float[16], 1);
        prefetcher.next();
        prefetcher.close();
        prefetcher.close();
        assertThrows(IllegalStateException.class, prefetcher::next);
        assertThrows(IllegalArgumentException.class, () -> new BatchPrefetcher<>(() -> 1, 0));
    }
}
