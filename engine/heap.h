/* heap.h -- a binary min-heap of source indices, as the merges in
 * compact.c and iter.c keep their inputs: h[0] is the source whose
 * current entry comes first by less(ctx, a, b).  Header-only so each
 * merge's comparison inlines. */
#ifndef KV_HEAP_H
#define KV_HEAP_H

typedef int (*heap_less_fn)(const void *ctx, int a, int b);

/* Move h[i] down to its place among h[0..n). */
static inline void heap_sift_down(int *h, int n, int i, heap_less_fn less, const void *ctx)
{
    for (;;) {
        int l = 2 * i + 1, m = i;
        if (l < n && less(ctx, h[l], h[m]))
            m = l;
        if (l + 1 < n && less(ctx, h[l + 1], h[m]))
            m = l + 1;
        if (m == i)
            return;
        int t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

/* Order h[0..n) as a heap. */
static inline void heap_make(int *h, int n, heap_less_fn less, const void *ctx)
{
    for (int i = n / 2 - 1; i >= 0; i--)
        heap_sift_down(h, n, i, less, ctx);
}

#endif
