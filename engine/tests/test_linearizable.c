/* test_linearizable.c -- the engine's operations on one key are
 * linearizable, across processes and threads: histories of get, put,
 * put-if-absent, put-if-seq and delete (returning the old value), issued by
 * forked processes sharing one directory, are recorded with their invoke
 * and return times and checked against a versioned register per key
 * (linearize.h), also when one writer is killed mid-run.  First, hand-made
 * histories, and small random ones compared with a brute-force search,
 * show the checker tells linearizable from not.
 *
 * Knobs (environment): KVLSM_LIN_OPS ops per thread (1500; 150 under
 * valgrind), KVLSM_LIN_ROUNDS runs per test (1), KVLSM_LIN_SECONDS time
 * bound of one run's workers (20), KVLSM_LIN_SEED the seed (printed; it
 * replays the random choices, not the timing), KVLSM_LIN_DUMP where failed
 * histories are written, KVLSM_LIN_REPLAY a dumped history to check. */
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include "testutil.h"
#include "linearize.h"
#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#endif
#endif
#ifndef RUNNING_ON_VALGRIND
#define RUNNING_ON_VALGRIND 0
#endif

/* ---- hand-made histories ---------------------------------------------- */

static lin_op_t mk(uint8_t kind, uint64_t t0, uint64_t t1, uint8_t result)
{
    return (lin_op_t){ .kind = kind, .invoke_ns = t0, .return_ns = t1, .result = result };
}

static lin_op_t put(uint64_t t0, uint64_t t1, uint64_t val, uint64_t seq)
{
    lin_op_t o = mk(LIN_PUT, t0, t1, LIN_OK);
    o.val = val;
    o.seq = seq;
    return o;
}

static lin_op_t get(uint64_t t0, uint64_t t1, uint64_t got, uint64_t seq)
{
    lin_op_t o = mk(LIN_GET, t0, t1, got ? LIN_OK : LIN_NOTFOUND);
    o.got = got;
    o.seq = seq;
    return o;
}

static lin_op_t del(uint64_t t0, uint64_t t1, uint64_t got, uint64_t seq)
{
    lin_op_t o = mk(LIN_DELETE, t0, t1, got ? LIN_OK : LIN_NOTFOUND);
    o.got = got;
    o.seq = seq;
    return o;
}

static lin_op_t pia(uint64_t t0, uint64_t t1, uint64_t val, uint64_t seq, uint8_t result)
{
    lin_op_t o = mk(LIN_PUT_IF_ABSENT, t0, t1, result);
    o.val = val;
    o.seq = seq;
    return o;
}

static lin_op_t pis(uint64_t t0, uint64_t t1, uint64_t val, uint64_t if_seq, uint64_t seq,
                    uint8_t result)
{
    lin_op_t o = mk(LIN_PUT_IF_SEQ, t0, t1, result);
    o.val = val;
    o.if_seq = if_seq;
    o.seq = seq;
    return o;
}

static lin_op_t cut(lin_op_t o)
{
    o.result = LIN_INDETERMINATE;
    o.return_ns = LIN_NEVER;
    o.seq = 0;
    return o;
}

#define NOPS(h) (sizeof(h) / sizeof((h)[0]))

/* Checks h; returns the verdict and keeps the report in *rep (caller frees). */
static int check_hist(lin_op_t *h, size_t n, unsigned flags, char **rep)
{
    size_t len;
    FILE *f = open_memstream(rep, &len);
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++)
        h[i].thread = (int16_t)i;
    lin_config_t cfg = { .flags = flags, .report = f };
    int rc = lin_check(h, n, &cfg, NULL);
    fclose(f);
    return rc;
}

static void expect(lin_op_t *h, size_t n, unsigned flags, int want)
{
    char *rep = NULL;
    int rc = check_hist(h, n, flags, &rep);
    cr_expect_eq(rc, want, "verdict %d, expected %d; report:\n%s", rc, want, rep);
    if (want == LIN_VIOLATION)
        cr_expect_not_null(strstr(rep, "NOT linearizable"), "report:\n%s", rep);
    free(rep);
}

Test(linearizable, checker_accepts_a_sequential_history)
{
    lin_op_t h[] = {
        get(0, 1, 0, 0), put(2, 3, 0xA, 1), get(4, 5, 0xA, 1),
        pia(6, 7, 0xB, 0, LIN_CONFLICT), pis(8, 9, 0xC, 1, 2, LIN_OK), get(10, 11, 0xC, 2),
        pis(12, 13, 0xD, 1, 0, LIN_CONFLICT), del(14, 15, 0xC, 2), del(16, 17, 0, 0),
        get(18, 19, 0, 0), pia(20, 21, 0xE, 3, LIN_OK), get(22, 23, 0xE, 3),
    };
    expect(h, NOPS(h), LIN_SEQ_INCREASES, LIN_LINEARIZABLE);
}

Test(linearizable, checker_accepts_reads_overlapping_a_put_either_way)
{
    /* Both reads overlap the put: one sees the old value, one the new; a
     * read overlapping nothing sees the new one. */
    lin_op_t h[] = {
        put(0, 1, 0xA, 1), put(10, 20, 0xB, 2),
        get(11, 19, 0xB, 2), get(12, 21, 0xA, 1), get(30, 31, 0xB, 2),
    };
    expect(h, NOPS(h), LIN_SEQ_INCREASES, LIN_LINEARIZABLE);
}

Test(linearizable, checker_rejects_a_stale_read)
{
    lin_op_t h[] = { put(0, 1, 0xA, 1), put(2, 3, 0xB, 2), get(4, 5, 0xA, 1) };
    char *rep = NULL;
    cr_assert_eq(check_hist(h, NOPS(h), 0, &rep), LIN_VIOLATION, "%s", rep);
    /* The report names the key, the stuck op and the state it found. */
    cr_expect_not_null(strstr(rep, "key #0"), "%s", rep);
    cr_expect_not_null(strstr(rep, "> #2"), "%s", rep);
    cr_expect_not_null(strstr(rep, "leaves the key = 0xb seq 2"), "%s", rep);
    free(rep);
}

Test(linearizable, checker_rejects_a_deleted_value_coming_back)
{
    lin_op_t h[] = { put(0, 1, 0xA, 1), del(2, 3, 0xA, 1), get(4, 5, 0xA, 1) };
    expect(h, NOPS(h), 0, LIN_VIOLATION);
}

Test(linearizable, checker_rejects_two_deletes_returning_the_same_value)
{
    lin_op_t h[] = { put(0, 1, 0xA, 1), del(2, 5, 0xA, 1), del(3, 6, 0xA, 1) };
    expect(h, NOPS(h), 0, LIN_VIOLATION);
}

Test(linearizable, checker_accepts_two_deletes_of_which_one_finds_nothing)
{
    lin_op_t h[] = { put(0, 1, 0xA, 1), del(2, 5, 0, 0), del(3, 6, 0xA, 1), get(7, 8, 0, 0) };
    expect(h, NOPS(h), 0, LIN_LINEARIZABLE);
}

Test(linearizable, checker_rejects_a_conditional_put_against_an_overwritten_version)
{
    lin_op_t h[] = { put(0, 1, 0xA, 1), put(2, 3, 0xB, 2), pis(4, 5, 0xC, 1, 3, LIN_OK) };
    expect(h, NOPS(h), 0, LIN_VIOLATION);
    /* Against the current version it is fine, and a miss must conflict. */
    lin_op_t ok[] = { put(0, 1, 0xA, 1), put(2, 3, 0xB, 2), pis(4, 5, 0xC, 2, 3, LIN_OK),
                      pis(6, 7, 0xD, 2, 0, LIN_CONFLICT) };
    expect(ok, NOPS(ok), 0, LIN_LINEARIZABLE);
    lin_op_t miss[] = { put(0, 1, 0xA, 1), pis(2, 3, 0xC, 1, 0, LIN_CONFLICT) };
    expect(miss, NOPS(miss), 0, LIN_VIOLATION);
}

Test(linearizable, checker_rejects_two_puts_if_absent_both_succeeding)
{
    lin_op_t h[] = { pia(0, 10, 0xA, 1, LIN_OK), pia(1, 11, 0xB, 2, LIN_OK) };
    expect(h, NOPS(h), 0, LIN_VIOLATION);
    lin_op_t ok[] = { pia(0, 10, 0xA, 1, LIN_OK), pia(1, 11, 0xB, 0, LIN_CONFLICT),
                      get(12, 13, 0xA, 1) };
    expect(ok, NOPS(ok), 0, LIN_LINEARIZABLE);
}

Test(linearizable, checker_rejects_a_read_of_no_write_or_of_the_wrong_version)
{
    lin_op_t never[] = { put(0, 1, 0xA, 1), get(2, 3, 0xF, 1) };
    expect(never, NOPS(never), 0, LIN_VIOLATION);
    lin_op_t garbled[] = { put(0, 1, 0xA, 1), get(2, 3, 0, 1) };
    garbled[1].result = LIN_OK;  /* a value that parsed as nobody's */
    expect(garbled, NOPS(garbled), 0, LIN_VIOLATION);
    lin_op_t version[] = { put(0, 1, 0xA, 1), get(2, 3, 0xA, 7) };
    expect(version, NOPS(version), 0, LIN_VIOLATION);
    lin_op_t early[] = { get(0, 1, 0xA, 1), put(2, 3, 0xA, 1) };
    expect(early, NOPS(early), 0, LIN_VIOLATION);
}

Test(linearizable, checker_lets_an_indeterminate_write_land_once_or_never)
{
    lin_op_t seen[] = { put(0, 1, 0xA, 1), cut(put(2, 3, 0xB, 0)), get(10, 11, 0xB, 5),
                        get(12, 13, 0xB, 5) };
    expect(seen, NOPS(seen), LIN_SEQ_INCREASES, LIN_LINEARIZABLE);
    lin_op_t unseen[] = { put(0, 1, 0xA, 1), cut(put(2, 3, 0xB, 0)), get(10, 11, 0xA, 1) };
    expect(unseen, NOPS(unseen), LIN_SEQ_INCREASES, LIN_LINEARIZABLE);
    lin_op_t late[] = { put(0, 1, 0xA, 1), cut(put(2, 3, 0xB, 0)), get(10, 11, 0xA, 1),
                        get(12, 13, 0xB, 5) };
    expect(late, NOPS(late), LIN_SEQ_INCREASES, LIN_LINEARIZABLE);
    /* Once landed, the old value cannot come back. */
    lin_op_t flip[] = { put(0, 1, 0xA, 1), cut(put(2, 3, 0xB, 0)), get(10, 11, 0xB, 5),
                        get(12, 13, 0xA, 1) };
    expect(flip, NOPS(flip), 0, LIN_VIOLATION);
    /* A cut delete: the value is gone or still there, not both in turn. */
    lin_op_t d[] = { put(0, 1, 0xA, 1), cut(del(2, 3, 0, 0)), get(10, 11, 0, 0),
                     get(12, 13, 0xA, 1) };
    expect(d, NOPS(d), 0, LIN_VIOLATION);
    /* A cut put-if-absent on a present key changes nothing. */
    lin_op_t c[] = { put(0, 1, 0xA, 1), cut(pia(2, 3, 0xB, 0, 0)), get(10, 11, 0xB, 2) };
    expect(c, NOPS(c), 0, LIN_VIOLATION);
}

Test(linearizable, checker_rejects_versions_going_backwards_only_when_asked)
{
    lin_op_t h[] = { put(0, 1, 0xA, 5), put(2, 3, 0xB, 4), get(4, 5, 0xB, 4) };
    expect(h, NOPS(h), 0, LIN_LINEARIZABLE);
    expect(h, NOPS(h), LIN_SEQ_INCREASES, LIN_VIOLATION);
}

Test(linearizable, checker_keeps_keys_apart)
{
    lin_op_t h[] = { put(0, 1, 0xA, 1), get(2, 3, 0, 0), put(4, 5, 0xB, 2), get(6, 7, 0xA, 1) };
    h[1].key = h[2].key = 1;
    expect(h, NOPS(h), 0, LIN_LINEARIZABLE);
    h[3].key = 1;  /* key 1 reads key 0's value */
    expect(h, NOPS(h), 0, LIN_VIOLATION);
}

static uint64_t xs(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

typedef struct {
    lin_op_t op;
    uint64_t at;      /* the chosen linearization point */
    int lands;        /* an indeterminate write: whether it takes effect */
} genop_t;

static int cmp_at(const void *a, const void *b)
{
    const genop_t *x = a, *y = b;
    return x->at < y->at ? -1 : x->at > y->at;
}

/* A history made linearizable by construction: threads issue ops one
 * after another with random overlaps, each takes effect at a random
 * point inside its interval, and results follow from a register. */
static size_t gen_history(lin_op_t *out, size_t n, uint64_t seed, uint64_t cut_one_in)
{
    genop_t *g = calloc(n, sizeof *g);
    cr_assert_not_null(g);
    uint64_t s = seed | 1, clock[6] = { 0 };
    for (size_t i = 0; i < n; i++) {
        int t = (int)(xs(&s) % 6);
        lin_op_t *o = &g[i].op;
        o->thread = (int16_t)t;
        o->invoke_ns = clock[t] + xs(&s) % 50;
        o->return_ns = o->invoke_ns + 1 + xs(&s) % 200;
        clock[t] = o->return_ns + 1;
        g[i].at = o->invoke_ns + xs(&s) % (o->return_ns - o->invoke_ns + 1);
        o->kind = (uint8_t)(LIN_GET + xs(&s) % 5);
        o->val = i + 1;
        /* A few cut ops, as a kill leaves (each one left pending doubles
         * the configurations after it). */
        if (o->kind != LIN_GET && xs(&s) % cut_one_in == 0) {
            o->result = LIN_INDETERMINATE;
            g[i].lands = (int)(xs(&s) % 2);
        }
    }
    qsort(g, n, sizeof *g, cmp_at);
    /* cur == 0: absent.  A conditional put names a version somebody saw
     * (written or read by a determinate op), as the engine test's
     * threads do: the version of a cut write nobody read is unknown. */
    uint64_t cur = 0, cur_seq = 0, next_seq = 1, known_old = 0;
    int cur_known = 0;
    for (size_t i = 0; i < n; i++) {
        lin_op_t *o = &g[i].op;
        int indet = o->result == LIN_INDETERMINATE, apply = !indet || g[i].lands;
        if (o->kind == LIN_PUT_IF_SEQ)
            o->if_seq = xs(&s) % 3 && cur_known ? cur_seq : known_old;
        int present = cur != 0;
        int holds = o->kind == LIN_PUT ? 1
                    : o->kind == LIN_PUT_IF_ABSENT ? !present
                    : o->kind == LIN_PUT_IF_SEQ ? present && cur_seq == o->if_seq
                    : present;
        switch (o->kind) {
        case LIN_GET:
            o->result = present ? LIN_OK : LIN_NOTFOUND;
            o->got = cur;
            o->seq = cur_seq;
            cur_known |= present;
            break;
        case LIN_DELETE:
            if (!indet) {
                o->result = present ? LIN_OK : LIN_NOTFOUND;
                o->got = cur;
                o->seq = cur_seq;
                cur_known |= present;
            }
            if (apply && present) {
                if (cur_known)
                    known_old = cur_seq;
                cur = 0;
            }
            break;
        default:
            if (!indet) {
                o->result = holds ? LIN_OK : LIN_CONFLICT;
                o->seq = holds ? next_seq : 0;
            }
            if (apply && holds) {
                if (cur && cur_known)
                    known_old = cur_seq;
                cur = o->val;
                cur_seq = next_seq++;
                cur_known = !indet;
            }
        }
        if (indet)
            o->return_ns = LIN_NEVER;
    }
    for (size_t i = 0; i < n; i++)
        out[i] = g[i].op;
    free(g);
    return n;
}

Test(linearizable, checker_accepts_random_linearizable_histories)
{
    size_t n = RUNNING_ON_VALGRIND ? 1000 : 4000;
    lin_op_t *h = calloc(n, sizeof *h);
    cr_assert_not_null(h);
    for (uint64_t seed = 1; seed <= 8; seed++) {
        gen_history(h, n, seed * 0x9e3779b97f4a7c15ull, n / 4);
        lin_stats_t st;
        lin_config_t cfg = { .flags = LIN_SEQ_INCREASES, .report = stderr };
        cr_assert_eq(lin_check(h, n, &cfg, &st), LIN_LINEARIZABLE, "seed %llu",
                     (unsigned long long)seed);
        cr_assert_eq(st.ops, n);
        /* Any get turned into a read of a value nobody wrote must fail. */
        for (size_t i = n / 2; i < n; i++) {
            if (h[i].kind == LIN_GET && h[i].result == LIN_OK) {
                h[i].got = 0xdead0000ull + i;
                cfg.report = NULL;
                cr_assert_eq(lin_check(h, n, &cfg, NULL), LIN_VIOLATION);
                break;
            }
        }
    }
    free(h);
}

/* The same question answered by brute force, written apart from
 * linearize.c: every order of the ops that respects real time, run
 * through a register; a cut op may also be left out. */
typedef struct {
    const lin_op_t *h;
    size_t n;
    uint64_t wseq[8];   /* the version each write stores */
    int rising;
} brute_t;

static int brute_writer(const brute_t *b, uint64_t val)
{
    for (size_t i = 0; i < b->n; i++)
        if (b->h[i].kind >= LIN_PUT && b->h[i].kind <= LIN_PUT_IF_SEQ && b->h[i].val == val)
            return (int)i;
    return -1;
}

static int brute(const brute_t *b, unsigned placed, int cur)  /* cur: writer, -1 absent */
{
    int all = 1;
    for (size_t i = 0; i < b->n; i++)
        if (!(placed >> i & 1) && b->h[i].result != LIN_INDETERMINATE)
            all = 0;
    if (all)
        return 1;
    for (size_t i = 0; i < b->n; i++) {
        if (placed >> i & 1)
            continue;
        const lin_op_t *o = &b->h[i];
        int blocked = 0;
        for (size_t j = 0; j < b->n; j++)
            if (!(placed >> j & 1) && j != i && b->h[j].return_ns < o->invoke_ns)
                blocked = 1;
        if (blocked)
            continue;
        int present = cur >= 0;
        uint64_t cseq = present ? b->wseq[cur] : 0;
        int holds = o->kind == LIN_PUT ? 1 : o->kind == LIN_PUT_IF_ABSENT ? !present
                    : o->kind == LIN_PUT_IF_SEQ ? present && cseq == o->if_seq && cseq != 0
                    : present;
        int rises = !b->rising || !present || !cseq || !b->wseq[i] || b->wseq[i] > cseq;
        int read_ok = present && o->got == b->h[cur].val && o->seq == cseq;
        int next = -2;  /* -2: impossible here */
        if (o->result == LIN_INDETERMINATE) {
            /* Left out altogether, or taking effect here. */
            if (brute(b, placed | 1u << i, cur))
                return 1;
            if (o->kind == LIN_DELETE)
                next = present ? -1 : -2;
            else
                next = holds && rises ? (int)i : -2;
        } else if (o->kind == LIN_GET) {
            next = o->result == LIN_OK ? (read_ok ? cur : -2)
                   : o->result == LIN_NOTFOUND && !present ? cur : -2;
        } else if (o->kind == LIN_DELETE) {
            next = o->result == LIN_OK ? (read_ok ? -1 : -2)
                   : o->result == LIN_NOTFOUND && !present ? cur : -2;
        } else {
            next = o->result == LIN_OK ? (holds && rises ? (int)i : -2)
                   : o->result == LIN_CONFLICT && !holds && o->kind != LIN_PUT ? cur : -2;
        }
        if (next != -2 && brute(b, placed | 1u << i, next))
            return 1;
    }
    return 0;
}

static int brute_check(const lin_op_t *h, size_t n, int rising)
{
    brute_t b = { .h = h, .n = n, .rising = rising };
    for (size_t i = 0; i < n; i++)
        if (h[i].kind >= LIN_PUT && h[i].kind <= LIN_PUT_IF_SEQ && h[i].result == LIN_OK)
            b.wseq[i] = h[i].seq;
    /* A cut write stores the version its first reader saw, if any. */
    for (size_t i = 0; i < n; i++) {
        if ((h[i].kind == LIN_GET || h[i].kind == LIN_DELETE) && h[i].result == LIN_OK) {
            int w = brute_writer(&b, h[i].got);
            if (w >= 0 && h[w].result == LIN_INDETERMINATE && !b.wseq[w])
                b.wseq[w] = h[i].seq;
        }
    }
    return brute(&b, 0, -1);
}

Test(linearizable, checker_agrees_with_brute_force_on_small_histories)
{
    enum { N = 6 };
    lin_op_t h[N];
    int trials = RUNNING_ON_VALGRIND ? 2000 : 20000, verdicts[2] = { 0, 0 };
    uint64_t s = 0x1234567;
    for (int t = 0; t < trials; t++) {
        gen_history(h, N, xs(&s), 5);
        for (size_t i = 0; i < N; i++) {
            h[i].key = 0;
            h[i].invoke_ns %= 60;  /* crowd them: more overlap */
            if (h[i].return_ns != LIN_NEVER)
                h[i].return_ns = h[i].invoke_ns + h[i].return_ns % 40;
            else if (xs(&s) % 2)  /* a cut op known to be over by then */
                h[i].return_ns = h[i].invoke_ns + xs(&s) % 40;
        }
        /* Usually spoil one op: a result, the value read, a version. */
        if (xs(&s) % 4) {
            lin_op_t *o = &h[xs(&s) % N];
            switch (xs(&s) % 5) {
            case 0: o->result = (uint8_t)(LIN_OK + xs(&s) % 3); break;
            case 1: o->got = xs(&s) % (N + 1); break;
            case 2: o->seq = 1 + xs(&s) % N; break;
            case 3: o->if_seq = 1 + xs(&s) % N; break;
            default: o->invoke_ns = o->return_ns == LIN_NEVER ? o->invoke_ns : o->return_ns;
            }
            if ((o->kind == LIN_GET || o->kind == LIN_DELETE) && o->result == LIN_OK && !o->got)
                o->got = 1;
            if (o->result == LIN_OK && !o->seq)  /* versions start at 1 */
                o->seq = 1 + xs(&s) % N;
        }
        int rising = (int)(xs(&s) % 2);
        lin_config_t cfg = { .flags = rising ? LIN_SEQ_INCREASES : 0 };
        int want = brute_check(h, N, rising) ? LIN_LINEARIZABLE : LIN_VIOLATION;
        int got = lin_check(h, N, &cfg, NULL);
        if (got != want) {
            cfg.report = stderr;
            lin_check(h, N, &cfg, NULL);
            for (size_t i = 0; i < N; i++)
                fprintf(stderr, "op %zu: %s [%llu, %llu] val %llu if %llu -> %s got %llu seq %llu\n",
                        i, lin_kind_name(h[i].kind), (unsigned long long)h[i].invoke_ns,
                        (unsigned long long)h[i].return_ns, (unsigned long long)h[i].val,
                        (unsigned long long)h[i].if_seq, lin_result_name(h[i].result),
                        (unsigned long long)h[i].got, (unsigned long long)h[i].seq);
        }
        cr_assert_eq(got, want, "trial %d: checker %d, brute force %d", t, got, want);
        verdicts[want == LIN_LINEARIZABLE]++;
    }
    /* Both answers came up often enough to mean something. */
    cr_expect_gt(verdicts[0], trials / 10);
    cr_expect_gt(verdicts[1], trials / 10);
}

/* ---- histories of the engine ------------------------------------------ */

#define NPROC 3
#define NTHREAD 3
#define NKEYS 6
#define MEMTABLE (12 << 10)
#define MAX_PAD 6000

static const char *const key_names[NKEYS] = {
    "lin/k0", "lin/k1", "lin/k2", "lin/k3", "lin/k4", "lin/k5"
};

typedef struct {
    lin_op_t op;
    uint32_t state;   /* 0: never started, 1: invoked, 2: returned */
} slot_t;

typedef struct {
    uint64_t cap, next;           /* slots, slots handed out */
    uint64_t done[NPROC];         /* ops each process has completed */
    uint64_t errors[NPROC];       /* results other than OK, NOTFOUND, CONFLICT */
    uint64_t garbled[NPROC];      /* values read that were not as written */
    char first_error[NPROC][160];
    int ready;
    slot_t slots[];
} hist_t;

typedef struct {
    int ops, rounds, seconds;
    uint64_t seed;
} knobs_t;

static int env_int(const char *name, int dflt)
{
    const char *e = getenv(name);
    return e && atoi(e) > 0 ? atoi(e) : dflt;
}

static knobs_t knobs(void)
{
    knobs_t k;
    k.ops = env_int("KVLSM_LIN_OPS", RUNNING_ON_VALGRIND ? 150 : 1500);
    k.rounds = env_int("KVLSM_LIN_ROUNDS", 1);
    k.seconds = env_int("KVLSM_LIN_SECONDS", 20);
    const char *s = getenv("KVLSM_LIN_SEED");
    k.seed = s ? strtoull(s, NULL, 0) : ((uint64_t)time(NULL) << 16) ^ (uint64_t)getpid();
    return k;
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Value ids: pid, thread and a counter; the value is "p<pid>-t<thread>-<n>:"
 * then padding that is a function of the id, so a read is checked whole. */
static uint64_t val_id(pid_t pid, int thread, uint64_t n)
{
    return ((uint64_t)pid << 40) | ((uint64_t)thread << 32) | (n & 0xffffffffull);
}

static void describe_val(uint64_t id, char *buf, size_t n)
{
    snprintf(buf, n, "p%llu-t%llu-%llu", (unsigned long long)(id >> 40),
             (unsigned long long)((id >> 32) & 0xff), (unsigned long long)(id & 0xffffffffull));
}

static char pad_char(uint64_t id, size_t i)
{
    return (char)('a' + (id * 31 + i * 7) % 26);
}

static size_t make_val(char *buf, uint64_t id, size_t pad)
{
    char head[64];
    describe_val(id, head, sizeof head);
    size_t h = (size_t)snprintf(buf, 80, "%s:", head);
    for (size_t i = 0; i < pad; i++)
        buf[h + i] = pad_char(id, i);
    return h + pad;
}

/* The id of the value read, or 0 if it is not exactly what some write wrote. */
static uint64_t parse_val(const char *v, size_t len)
{
    unsigned long long pid, t, n;
    int used = 0;
    char head[80];
    if (len >= sizeof head)
        memcpy(head, v, sizeof head - 1), head[sizeof head - 1] = 0;
    else
        memcpy(head, v, len), head[len] = 0;
    if (sscanf(head, "p%llu-t%llu-%llu:%n", &pid, &t, &n, &used) != 3 || used == 0)
        return 0;
    uint64_t id = val_id((pid_t)pid, (int)t, n);
    char want[80];
    describe_val(id, want, sizeof want);
    size_t h = strlen(want) + 1;
    if ((size_t)used != h || memcmp(v, want, h - 1) != 0)
        return 0;
    for (size_t i = h; i < len; i++)
        if (v[i] != pad_char(id, i - h))
            return 0;
    return id;
}

static size_t pick_pad(uint64_t *s)
{
    uint64_t r = xs(s) % 10;
    if (r < 7)
        return (size_t)(xs(s) % 40);
    if (r < 9)
        return 100 + (size_t)(xs(s) % 900);
    return 2000 + (size_t)(xs(s) % (MAX_PAD - 2000));
}

typedef struct {
    kv_db_t *db;
    hist_t *h;
    int proc, thread, ops;
    uint64_t rng, deadline;
    uint64_t seen[NKEYS], older[NKEYS];  /* versions this thread saw per key */
    char buf[MAX_PAD + 128];
} worker_t;

static void note_error(worker_t *w, const char *what, apr_status_t rv)
{
    if (__atomic_fetch_add(&w->h->errors[w->proc], 1, __ATOMIC_ACQ_REL) == 0) {
        char e[100];
        snprintf(w->h->first_error[w->proc], sizeof w->h->first_error[w->proc],
                 "%s: %s (%d)", what, kv_strerror(rv, e, sizeof e), rv);
    }
}

static void saw(worker_t *w, int key, uint64_t seq)
{
    if (seq != w->seen[key]) {
        w->older[key] = w->seen[key];
        w->seen[key] = seq;
    }
}

static uint8_t result_of(worker_t *w, const char *what, apr_status_t rv)
{
    if (rv == APR_SUCCESS)
        return LIN_OK;
    if (rv == KV_NOTFOUND)
        return LIN_NOTFOUND;
    if (rv == KV_CONFLICT)
        return LIN_CONFLICT;
    note_error(w, what, rv);
    return LIN_INDETERMINATE;
}

static void *worker(void *arg)
{
    worker_t *w = arg;
    hist_t *h = w->h;
    apr_pool_t *pool;
    if (apr_pool_create(&pool, NULL) != APR_SUCCESS)
        return NULL;
    pid_t pid = getpid();
    for (int i = 0; i < w->ops && now_ns() < w->deadline; i++) {
        uint64_t idx = __atomic_fetch_add(&h->next, 1, __ATOMIC_ACQ_REL);
        if (idx >= h->cap)
            break;
        slot_t *s = &h->slots[idx];
        lin_op_t *o = &s->op;
        int key = (int)(xs(&w->rng) % NKEYS);
        uint64_t r = xs(&w->rng) % 100;
        /* Plain puts are the ones the engine groups into one append. */
        uint8_t kind = r < 30 ? LIN_GET : r < 60 ? LIN_PUT : r < 70 ? LIN_PUT_IF_ABSENT
                       : r < 85 ? LIN_PUT_IF_SEQ : LIN_DELETE;
        /* A conditional put names a version this thread saw (now and then
         * an older one, to conflict); never an invented one, which could
         * be the unknown version of a write cut by the kill. */
        uint64_t if_seq = xs(&w->rng) % 4 ? w->seen[key] : w->older[key];
        if (kind == LIN_PUT_IF_SEQ && if_seq == 0)
            kind = LIN_GET;
        *o = (lin_op_t){ .pid = pid, .thread = (int16_t)w->thread, .key = (uint16_t)key,
                         .kind = kind, .if_seq = kind == LIN_PUT_IF_SEQ ? if_seq : 0 };
        size_t vlen = 0;
        if (kind != LIN_GET && kind != LIN_DELETE) {
            o->val = val_id(pid, w->thread, (uint64_t)i + 1);
            vlen = make_val(w->buf, o->val, pick_pad(&w->rng));
        }
        const char *k = key_names[key];
        kv_value_t v;
        kv_write_opts_t wo = { .cond = kind == LIN_PUT_IF_ABSENT ? KV_IF_ABSENT
                                       : kind == LIN_PUT_IF_SEQ ? KV_IF_SEQ : KV_IF_ANY,
                               .if_seq = if_seq };
        apr_uint64_t seq = 0;
        apr_status_t rv;
        o->invoke_ns = now_ns();
        __atomic_store_n(&s->state, 1, __ATOMIC_RELEASE);
        if (kind == LIN_GET)
            rv = kv_get(w->db, k, strlen(k), pool, &v);
        else if (kind == LIN_DELETE)
            rv = kv_delete(w->db, k, strlen(k), NULL, pool, &v);
        else
            rv = kv_put(w->db, k, strlen(k), w->buf, vlen, &wo, &seq);
        o->return_ns = now_ns();
        o->result = result_of(w, lin_kind_name(kind), rv);
        if (o->result == LIN_INDETERMINATE)
            o->return_ns = LIN_NEVER;
        if (rv == APR_SUCCESS && (kind == LIN_GET || kind == LIN_DELETE)) {
            o->got = parse_val(v.data, v.len);
            o->seq = v.seq;
            if (!o->got)
                __atomic_fetch_add(&h->garbled[w->proc], 1, __ATOMIC_ACQ_REL);
            saw(w, key, v.seq);
        } else if (rv == APR_SUCCESS) {
            o->seq = seq;
            saw(w, key, seq);
        }
        __atomic_store_n(&s->state, 2, __ATOMIC_RELEASE);
        __atomic_fetch_add(&h->done[w->proc], 1, __ATOMIC_ACQ_REL);
        apr_pool_clear(pool);
    }
    apr_pool_destroy(pool);
    return NULL;
}

static void child(const char *dir, hist_t *h, int proc, const knobs_t *kn, uint64_t seed)
{
    apr_pool_t *pool = tu_pool();
    kv_options_t o = tu_opts(MEMTABLE, 1);
    kv_db_t *db;
    if (kv_db_open(&db, dir, &o, pool) != APR_SUCCESS)
        _exit(3);
    /* Everyone opens before anyone writes; bounded, the parent is waiting. */
    __atomic_fetch_add(&h->ready, 1, __ATOMIC_ACQ_REL);
    uint64_t until = now_ns() + 30ull * 1000000000ull;
    while (__atomic_load_n(&h->ready, __ATOMIC_ACQUIRE) < NPROC && now_ns() < until)
        sched_yield();
    static worker_t w[NTHREAD];
    pthread_t th[NTHREAD];
    uint64_t deadline = now_ns() + (uint64_t)kn->seconds * 1000000000ull;
    for (int t = 0; t < NTHREAD; t++) {
        w[t] = (worker_t){ .db = db, .h = h, .proc = proc, .thread = t, .ops = kn->ops,
                           .deadline = deadline };
        w[t].rng = seed ^ (0x9e3779b97f4a7c15ull * (uint64_t)(proc * NTHREAD + t + 1));
        if (!w[t].rng)
            w[t].rng = 1;
        if (pthread_create(&th[t], NULL, worker, &w[t]) != 0)
            _exit(4);
    }
    for (int t = 0; t < NTHREAD; t++)
        pthread_join(th[t], NULL);
    int rc = kv_db_close(db) == APR_SUCCESS ? 0 : 5;
    apr_pool_destroy(pool);
    _exit(rc);
}

/* KVLSM_LIN_DUMP=prefix: a failed history goes to prefix.<seed>, one op a
 * line (key kind result invoke_ns return_ns pid thread val if_seq got seq),
 * for KVLSM_LIN_REPLAY. */
static void dump_history(const lin_op_t *ops, size_t n, uint64_t seed)
{
    const char *prefix = getenv("KVLSM_LIN_DUMP");
    if (!prefix)
        return;
    char path[4096];
    snprintf(path, sizeof path, "%s.%llu", prefix, (unsigned long long)seed);
    FILE *f = fopen(path, "w");
    if (!f)
        return;
    fprintf(f, "# seed %llu\n", (unsigned long long)seed);
    for (size_t i = 0; i < n; i++) {
        const lin_op_t *o = &ops[i];
        fprintf(f, "%u %u %u %llu %llu %d %d %llu %llu %llu %llu\n", o->key, o->kind, o->result,
                (unsigned long long)o->invoke_ns, (unsigned long long)o->return_ns, (int)o->pid,
                (int)o->thread, (unsigned long long)o->val, (unsigned long long)o->if_seq,
                (unsigned long long)o->got, (unsigned long long)o->seq);
    }
    fclose(f);
    fprintf(stderr, "history written to %s\n", path);
}

/* What the run exercised: outcomes per kind, and how many ops overlapped
 * another on their key (a history without overlaps checks little). */
static void log_mix(const lin_op_t *ops, size_t n)
{
    size_t count[6][5] = { { 0 } }, overlapped = 0;
    uint64_t last_ret[NKEYS] = { 0 };
    for (size_t i = 0; i < n; i++) {
        if (ops[i].kind <= LIN_DELETE && ops[i].result <= LIN_INDETERMINATE)
            count[ops[i].kind][ops[i].result]++;
    }
    /* ops are in invoke order per process only; count against the latest
     * return seen so far in slot order, a cheap lower bound. */
    for (size_t i = 0; i < n; i++) {
        unsigned k = ops[i].key;
        if (k < NKEYS) {
            if (ops[i].invoke_ns < last_ret[k])
                overlapped++;
            if (ops[i].return_ns != LIN_NEVER && ops[i].return_ns > last_ret[k])
                last_ret[k] = ops[i].return_ns;
        }
    }
    for (unsigned kd = LIN_GET; kd <= LIN_DELETE; kd++)
        cr_log_info("  %-13s OK %zu  NOTFOUND %zu  CONFLICT %zu  cut %zu", lin_kind_name(kd),
                    count[kd][LIN_OK], count[kd][LIN_NOTFOUND], count[kd][LIN_CONFLICT],
                    count[kd][LIN_INDETERMINATE]);
    cr_log_info("  %zu ops invoked before an earlier-recorded op on their key returned", overlapped);
}

/* Static, so the forked workers (which _exit holding them) still reach
 * them under valgrind's leak check. */
static char *lin_dir;
static hist_t *lin_hist;

/* Waits for pid until deadline; kills it if it is still running then.
 * Returns its status, *hung set if it had to be killed. */
static int wait_bounded(pid_t pid, uint64_t deadline, int *hung)
{
    int status = 0;
    *hung = 0;
    for (;;) {
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid)
            return status;
        if (r < 0)
            return -1;
        if (now_ns() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            *hung = 1;
            return status;
        }
        struct timespec ts = { 0, 2000000 };  /* polling interval, not a wait for an event */
        nanosleep(&ts, NULL);
    }
}

/* One run: NPROC processes of NTHREAD threads on one fresh directory; with
 * kill_one, process 0 is SIGKILLed once it has done a random part of its
 * ops.  Then the parent reopens the store, reads every key, and checks the
 * whole history. */
static void run_round(const knobs_t *kn, uint64_t seed, int kill_one)
{
    lin_dir = tu_tmpdir();
    size_t cap = (size_t)NPROC * NTHREAD * (size_t)kn->ops + NKEYS;
    size_t bytes = sizeof(hist_t) + cap * sizeof(slot_t);
    lin_hist = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(lin_hist, MAP_FAILED);
    hist_t *h = lin_hist;
    memset(h, 0, sizeof *h);
    h->cap = cap - NKEYS;
    uint64_t t_start = now_ns();
    pid_t pids[NPROC];
    for (int p = 0; p < NPROC; p++) {
        pids[p] = fork();
        cr_assert_geq(pids[p], 0);
        if (pids[p] == 0)
            child(lin_dir, h, p, kn, seed);
    }
    uint64_t grace = (uint64_t)(kn->seconds + 40) * 1000000000ull;
    int killed = 0;
    if (kill_one) {
        uint64_t total = (uint64_t)NTHREAD * (uint64_t)kn->ops, s = seed | 1;
        uint64_t threshold = total / 4 + xs(&s) % (total / 4 + 1);
        uint64_t until = now_ns() + (uint64_t)kn->seconds * 1000000000ull / 2;
        int status;
        for (;;) {
            if (__atomic_load_n(&h->done[0], __ATOMIC_ACQUIRE) >= threshold || now_ns() >= until)
                break;
            if (waitpid(pids[0], &status, WNOHANG) == pids[0])
                cr_assert_fail("seed %llu: process 0 ended before the kill (status %d)",
                               (unsigned long long)seed, status);
            struct timespec ts = { 0, 1000000 };  /* polling the shared counter */
            nanosleep(&ts, NULL);
        }
        cr_assert_eq(kill(pids[0], SIGKILL), 0);
        cr_assert_eq(waitpid(pids[0], &status, 0), pids[0]);
        cr_assert(WIFSIGNALED(status), "seed %llu: process 0 status %d", (unsigned long long)seed,
                  status);
        killed = 1;
        cr_log_info("seed %llu: killed process 0 after %llu of its ops (threshold %llu)",
                    (unsigned long long)seed,
                    (unsigned long long)__atomic_load_n(&h->done[0], __ATOMIC_ACQUIRE),
                    (unsigned long long)threshold);
    }
    int hung_any = 0, bad_exit = -1, bad_status = 0;
    char hung_list[128] = "";
    for (int p = killed ? 1 : 0; p < NPROC; p++) {
        int hung;
        int status = wait_bounded(pids[p], t_start + grace, &hung);
        hung_any |= hung;
        if (hung)
            snprintf(hung_list + strlen(hung_list), sizeof hung_list - strlen(hung_list),
                     " %d (pid %d, %llu ops done)", p, (int)pids[p],
                     (unsigned long long)__atomic_load_n(&h->done[p], __ATOMIC_ACQUIRE));
        if (!hung && !(WIFEXITED(status) && WEXITSTATUS(status) == 0) && bad_exit < 0) {
            bad_exit = p;
            bad_status = status;
        }
    }
    /* Whatever was in flight in a dead process is indeterminate. */
    size_t n = (size_t)__atomic_load_n(&h->next, __ATOMIC_ACQUIRE);
    if (n > h->cap)
        n = h->cap;
    lin_op_t *ops = malloc((n + NKEYS) * sizeof *ops);
    cr_assert_not_null(ops);
    size_t m = 0, cut = 0;
    for (size_t i = 0; i < n; i++) {
        slot_t *s = &h->slots[i];
        uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        if (state == 0)
            continue;
        ops[m] = s->op;
        if (state == 1) {
            ops[m].result = LIN_INDETERMINATE;
            ops[m].return_ns = LIN_NEVER;
            cut++;
        }
        m++;
    }
    /* The final state: one more get per key, after everything else. */
    apr_pool_t *pool = tu_pool();
    kv_db_t *db;
    kv_options_t o = tu_opts(MEMTABLE, 0);
    cr_assert_eq(kv_db_open(&db, lin_dir, &o, pool), APR_SUCCESS, "seed %llu: reopen",
                 (unsigned long long)seed);
    int final_errors = 0;
    for (int key = 0; key < NKEYS; key++) {
        lin_op_t *f = &ops[m++];
        *f = (lin_op_t){ .pid = getpid(), .thread = -1, .key = (uint16_t)key, .kind = LIN_GET };
        kv_value_t v;
        f->invoke_ns = now_ns();
        apr_status_t rv = kv_get(db, key_names[key], strlen(key_names[key]), pool, &v);
        f->return_ns = now_ns();
        if (rv == APR_SUCCESS) {
            f->result = LIN_OK;
            f->got = parse_val(v.data, v.len);
            f->seq = v.seq;
        } else if (rv == KV_NOTFOUND) {
            f->result = LIN_NOTFOUND;
        } else {
            f->result = LIN_INDETERMINATE;
            final_errors++;
        }
    }
    kv_stats_t dbst;
    cr_assert_eq(kv_db_stats(db, &dbst), APR_SUCCESS);
    kv_db_close(db);
    apr_pool_destroy(pool);
    uint64_t errors = 0, garbled = 0;
    const char *first_error = "";
    for (int p = 0; p < NPROC; p++) {
        errors += h->errors[p];
        garbled += h->garbled[p];
        if (h->errors[p] && !*first_error)
            first_error = h->first_error[p];
    }
    uint64_t t_check = now_ns();
    lin_config_t cfg = { .flags = LIN_SEQ_INCREASES, .report = stderr, .key_names = key_names,
                         .nkey_names = NKEYS, .describe_val = describe_val };
    lin_stats_t st;
    if (kill_one)
        fprintf(stderr, "(pid %d was the process killed)\n", (int)pids[0]);
    int rc = lin_check(ops, m, &cfg, &st);
    if (rc != LIN_LINEARIZABLE)
        dump_history(ops, m, seed);
    cr_log_info("seed %llu: %zu ops on %zu keys (%zu cut by the kill, %llu errors), run %.1f s, "
                "check %.1f ms, %llu configurations, %llu SSTs; %zu keys failed", (unsigned long long)seed,
                st.ops, st.keys, cut, (unsigned long long)errors, (double)(t_check - t_start) / 1e9,
                (double)(now_ns() - t_check) / 1e6, (unsigned long long)st.configs,
                (unsigned long long)dbst.sst_files, st.bad_keys);
    log_mix(ops, m);
    free(ops);
    munmap(lin_hist, bytes);
    lin_hist = NULL;
    tu_rmrf(lin_dir);
    free(lin_dir);
    lin_dir = NULL;
    cr_assert_gt(dbst.sst_files, 0, "seed %llu: memtables were flushed", (unsigned long long)seed);
    cr_assert(!hung_any, "seed %llu: %s; still running after %llu s, killed:%s (their ops in "
              "flight were checked as cut)", (unsigned long long)seed,
              killed ? "after the kill of process 0" : "no process was killed",
              (unsigned long long)(grace / 1000000000ull), hung_list);
    cr_assert_eq(bad_exit, -1, "seed %llu: process %d status %d", (unsigned long long)seed,
                 bad_exit, bad_status);
    cr_assert_eq(rc, LIN_LINEARIZABLE,
                 "seed %llu (KVLSM_LIN_SEED=%llu replays the choices): the history is %s "
                 "(report above, on stderr)", (unsigned long long)seed, (unsigned long long)seed,
                 rc == LIN_VIOLATION ? "NOT linearizable" : "too large to decide");
    cr_assert_eq(garbled, 0, "seed %llu: %llu reads returned a value nobody wrote",
                 (unsigned long long)seed, (unsigned long long)garbled);
    cr_assert_eq(errors + (uint64_t)final_errors, 0, "seed %llu: %llu ops failed, first: %s",
                 (unsigned long long)seed, (unsigned long long)errors, first_error);
}

/* KVLSM_LIN_REPLAY=file: check a history dumped by KVLSM_LIN_DUMP again
 * (the report is the same each time); skipped without it. */
Test(linearizable, replay_of_a_dumped_history)
{
    const char *path = getenv("KVLSM_LIN_REPLAY");
    if (!path)
        cr_skip_test("KVLSM_LIN_REPLAY names no history");
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    size_t cap = 1024, n = 0;
    lin_op_t *ops = malloc(cap * sizeof *ops);
    cr_assert_not_null(ops);
    char line[512];
    while (fgets(line, sizeof line, f)) {
        if (line[0] == '#')
            continue;
        unsigned key, kind, result;
        unsigned long long t0, t1, val, if_seq, got, seq;
        int pid, thread;
        if (sscanf(line, "%u %u %u %llu %llu %d %d %llu %llu %llu %llu", &key, &kind, &result,
                   &t0, &t1, &pid, &thread, &val, &if_seq, &got, &seq) != 11)
            continue;
        if (n == cap) {
            cap *= 2;
            ops = realloc(ops, cap * sizeof *ops);
            cr_assert_not_null(ops);
        }
        ops[n++] = (lin_op_t){ .key = (uint16_t)key, .kind = (uint8_t)kind,
                               .result = (uint8_t)result, .invoke_ns = t0, .return_ns = t1,
                               .pid = pid, .thread = (int16_t)thread, .val = val,
                               .if_seq = if_seq, .got = got, .seq = seq };
    }
    fclose(f);
    lin_config_t cfg = { .flags = LIN_SEQ_INCREASES, .report = stderr, .key_names = key_names,
                         .nkey_names = NKEYS, .describe_val = describe_val };
    lin_stats_t st;
    int rc = lin_check(ops, n, &cfg, &st);
    free(ops);
    cr_assert_eq(rc, LIN_LINEARIZABLE, "%s: %zu ops, %zu keys failed", path, n, st.bad_keys);
}

static void run_rounds(int kill_one)
{
    knobs_t kn = knobs();
    cr_log_info("KVLSM_LIN_SEED=%llu KVLSM_LIN_OPS=%d KVLSM_LIN_ROUNDS=%d",
                (unsigned long long)kn.seed, kn.ops, kn.rounds);
    fprintf(stderr, "linearizable: seed %llu (KVLSM_LIN_SEED), %d ops per thread, %d rounds\n",
            (unsigned long long)kn.seed, kn.ops, kn.rounds);
    for (int r = 0; r < kn.rounds; r++)
        run_round(&kn, kn.seed + (uint64_t)r, kill_one);
}

Test(linearizable, history_of_concurrent_processes_is_linearizable, .timeout = 900)
{
    run_rounds(0);
}

Test(linearizable, history_survives_kill_of_a_writer_is_linearizable, .timeout = 900)
{
    run_rounds(1);
}
