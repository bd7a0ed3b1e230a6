/* linearize.c -- the search behind linearize.h.  Per key: the calls and
 * returns of its ops sorted into one doubly linked list; depth-first, the
 * first pending call that the register's state allows is linearized (both
 * its entries lifted out of the list), and reaching a return whose op is
 * not linearized yet backtracks (Wing & Gong).  A configuration (set of
 * linearized ops, state) already visited is not explored again (Lowe).
 * The set is kept as a 128-bit Zobrist hash (XOR of a random pair per op),
 * so a configuration costs 24 bytes: two different sets sharing a hash
 * would wrongly prune a branch, which could only turn a pass into a
 * failure, with odds of about configs^2 / 2^128.
 * No Criterion here: the file is linked into the test binary as a helper. */
#include <stdlib.h>
#include <string.h>
#include "linearize.h"

#define SEQ_UNKNOWN UINT64_MAX  /* an indeterminate write nobody read */
#define ST_ABSENT   (-1)        /* state: no value; else the index of the write */
#define ST_NONE     (-2)        /* step: not possible */
#define DEFAULT_BUDGET 50000000ull

const char *lin_kind_name(unsigned kind)
{
    switch (kind) {
    case LIN_GET: return "get";
    case LIN_PUT: return "put";
    case LIN_PUT_IF_ABSENT: return "put-if-absent";
    case LIN_PUT_IF_SEQ: return "put-if-seq";
    case LIN_DELETE: return "delete";
    }
    return "?";
}

const char *lin_result_name(unsigned result)
{
    switch (result) {
    case LIN_OK: return "OK";
    case LIN_NOTFOUND: return "NOTFOUND";
    case LIN_CONFLICT: return "CONFLICT";
    case LIN_INDETERMINATE: return "INDETERMINATE";
    }
    return "?";
}

static int is_write(unsigned kind)
{
    return kind == LIN_PUT || kind == LIN_PUT_IF_ABSENT || kind == LIN_PUT_IF_SEQ;
}

typedef struct {
    const lin_op_t *op;
    int32_t writer;      /* get/delete OK: the write whose value it read, -1: none */
    uint64_t wseq;       /* writes: the version of the value stored */
    uint64_t z1, z2;     /* Zobrist pair */
} kop_t;

typedef struct {
    uint64_t a, b;
    int32_t st;
    uint32_t used;
} memo_t;

typedef struct {
    const lin_config_t *cfg;
    unsigned flags;
    kop_t *ops;
    size_t n;
    uint32_t *next, *prev;   /* entries: call of op i is 2i, its return 2i+1 */
    uint32_t head, end;
    memo_t *memo;
    size_t memo_cap, memo_len;
    uint64_t configs, budget;
    /* the deepest point reached, for the report */
    size_t best_depth;
    uint64_t *best_set;      /* bitset of the ops linearized there */
    int32_t best_state;
    int32_t best_blocker;    /* the op whose return could not be passed */
    uint64_t *cur_set;
} kctx_t;

static uint64_t splitmix(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* Inserts (a, b, st); 1 if it was new, 0 if seen, -1 out of memory. */
static int memo_insert(kctx_t *k, uint64_t a, uint64_t b, int32_t st)
{
    if (2 * (k->memo_len + 1) > k->memo_cap) {
        size_t ncap = k->memo_cap ? 2 * k->memo_cap : 1024;
        memo_t *nm = calloc(ncap, sizeof *nm);
        if (!nm)
            return -1;
        for (size_t i = 0; i < k->memo_cap; i++) {
            memo_t *m = &k->memo[i];
            if (!m->used)
                continue;
            size_t j = (size_t)((m->a ^ ((uint64_t)(uint32_t)m->st * 0x9e3779b97f4a7c15ull)) & (ncap - 1));
            while (nm[j].used)
                j = (j + 1) & (ncap - 1);
            nm[j] = *m;
        }
        free(k->memo);
        k->memo = nm;
        k->memo_cap = ncap;
    }
    size_t j = (size_t)((a ^ ((uint64_t)(uint32_t)st * 0x9e3779b97f4a7c15ull)) & (k->memo_cap - 1));
    while (k->memo[j].used) {
        memo_t *m = &k->memo[j];
        if (m->a == a && m->b == b && m->st == st)
            return 0;
        j = (j + 1) & (k->memo_cap - 1);
    }
    k->memo[j] = (memo_t){ .a = a, .b = b, .st = st, .used = 1 };
    k->memo_len++;
    return 1;
}

static uint64_t state_seq(const kctx_t *k, int32_t st)
{
    return st >= 0 ? k->ops[st].wseq : SEQ_UNKNOWN;
}

/* May the write i, storing version s, replace state st? */
static int may_replace(const kctx_t *k, int32_t st, uint64_t s)
{
    if (!(k->flags & LIN_SEQ_INCREASES) || st < 0)
        return 1;
    uint64_t cur = state_seq(k, st);
    return cur == SEQ_UNKNOWN || s == SEQ_UNKNOWN || s > cur;
}

static int reads_state(const kctx_t *k, const kop_t *o, int32_t st)
{
    return st >= 0 && o->writer == st && state_seq(k, st) == o->op->seq;
}

/* The state after op i in state st, taking the choice-th outcome (an
 * indeterminate op has two: it took effect, or it did not); ST_NONE if
 * that outcome is impossible there. */
static int32_t step(const kctx_t *k, uint32_t i, int32_t st, int choice)
{
    const kop_t *o = &k->ops[i];
    const lin_op_t *op = o->op;
    int32_t self = (int32_t)i;
    if (op->result == LIN_INDETERMINATE) {
        if (choice == 1)
            return st;
        switch (op->kind) {
        case LIN_PUT:
            return may_replace(k, st, o->wseq) ? self : ST_NONE;
        case LIN_PUT_IF_ABSENT:
            return st == ST_ABSENT ? self : ST_NONE;
        case LIN_PUT_IF_SEQ:
            return st >= 0 && state_seq(k, st) == op->if_seq && may_replace(k, st, o->wseq)
                   ? self : ST_NONE;
        case LIN_DELETE:
            return st >= 0 ? ST_ABSENT : ST_NONE;
        }
        return ST_NONE;
    }
    if (choice != 0)
        return ST_NONE;
    switch (op->kind) {
    case LIN_GET:
        if (op->result == LIN_OK)
            return reads_state(k, o, st) ? st : ST_NONE;
        if (op->result == LIN_NOTFOUND)
            return st == ST_ABSENT ? st : ST_NONE;
        return ST_NONE;
    case LIN_PUT:
        return op->result == LIN_OK && may_replace(k, st, o->wseq) ? self : ST_NONE;
    case LIN_PUT_IF_ABSENT:
        if (op->result == LIN_OK)
            return st == ST_ABSENT ? self : ST_NONE;
        if (op->result == LIN_CONFLICT)
            return st != ST_ABSENT ? st : ST_NONE;
        return ST_NONE;
    case LIN_PUT_IF_SEQ: {
        int holds = st >= 0 && state_seq(k, st) == op->if_seq;
        if (op->result == LIN_OK)
            return holds && may_replace(k, st, o->wseq) ? self : ST_NONE;
        if (op->result == LIN_CONFLICT)
            return holds ? ST_NONE : st;
        return ST_NONE;
    }
    case LIN_DELETE:
        if (op->result == LIN_OK)
            return reads_state(k, o, st) ? ST_ABSENT : ST_NONE;
        if (op->result == LIN_NOTFOUND)
            return st == ST_ABSENT ? st : ST_NONE;
        return ST_NONE;
    }
    return ST_NONE;
}

static void lift(kctx_t *k, uint32_t i)
{
    uint32_t c = 2 * i, r = 2 * i + 1;
    k->next[k->prev[c]] = k->next[c];
    k->prev[k->next[c]] = k->prev[c];
    k->next[k->prev[r]] = k->next[r];
    k->prev[k->next[r]] = k->prev[r];
}

static void unlift(kctx_t *k, uint32_t i)
{
    uint32_t c = 2 * i, r = 2 * i + 1;
    k->next[k->prev[r]] = r;
    k->prev[k->next[r]] = r;
    k->next[k->prev[c]] = c;
    k->prev[k->next[c]] = c;
}

typedef struct {
    uint64_t t;
    uint32_t e;
} sortent_t;

static int cmp_ent(const void *x, const void *y)
{
    const sortent_t *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    /* At one instant calls come before returns: such ops overlap. */
    if ((a->e & 1) != (b->e & 1))
        return (a->e & 1) ? 1 : -1;
    return a->e < b->e ? -1 : a->e > b->e;
}

typedef struct {
    uint32_t op;
    int32_t st;    /* the state before it */
    int choice;
} frame_t;

/* Where the search is: the ops linearized, in order, how many determinate
 * ones are left, the state, the hash of the set. */
typedef struct {
    frame_t *stack;
    size_t depth, det_left;
    int32_t st;
    uint64_t ha, hb;
} path_t;

/* Place op i with the given outcome on top of the current configuration,
 * unless that configuration was visited already: 1 placed, 0 not, -1 the
 * budget or memory ran out. */
static int place(kctx_t *k, path_t *p, uint32_t i, int choice)
{
    int32_t ns = step(k, i, p->st, choice);
    if (ns == ST_NONE)
        return 0;
    uint64_t na = p->ha ^ k->ops[i].z1, nb = p->hb ^ k->ops[i].z2;
    int fresh = memo_insert(k, na, nb, ns);
    if (fresh <= 0)
        return fresh;
    if (++k->configs > k->budget)
        return -1;
    p->stack[p->depth++] = (frame_t){ .op = i, .st = p->st, .choice = choice };
    k->cur_set[i / 64] |= 1ull << (i % 64);
    p->det_left -= k->ops[i].op->result != LIN_INDETERMINATE;
    p->st = ns;
    p->ha = na;
    p->hb = nb;
    lift(k, i);
    return 1;
}

/* The search itself: LIN_LINEARIZABLE, LIN_VIOLATION or LIN_GAVE_UP.
 * An indeterminate op is tried with its effect at every point after its
 * call; without it (the op never happened) only once, at its return, the
 * latest moment it could have taken effect, and one that never returns
 * need not be placed at all: the search is done when every determinate op
 * is.  That keeps ops cut by a kill from multiplying the configurations. */
static int search(kctx_t *k)
{
    size_t n = k->n, words = (n + 63) / 64;
    path_t p = { .st = ST_ABSENT };
    p.stack = malloc((n + 1) * sizeof *p.stack);
    if (!p.stack)
        return LIN_GAVE_UP;
    memset(k->cur_set, 0, words * sizeof(uint64_t));
    for (size_t i = 0; i < n; i++)
        p.det_left += k->ops[i].op->result != LIN_INDETERMINATE;
    uint32_t e = k->next[k->head];
    int first_choice = 0, rc = LIN_LINEARIZABLE, best_taken = 0, r;
    k->best_depth = 0;
    k->best_blocker = -1;
    k->best_state = ST_ABSENT;
    while (p.det_left > 0) {
        uint32_t i = e / 2;
        if (!(e & 1)) {
            /* A call: linearize it here if the state allows. */
            r = first_choice == 0 ? place(k, &p, i, 0) : 0;
            first_choice = 0;
            if (r < 0) {
                rc = LIN_GAVE_UP;
                break;
            }
            if (r) {
                if (p.depth > k->best_depth) {
                    k->best_depth = p.depth;
                    best_taken = 0;
                }
                e = k->next[k->head];
            } else {
                e = k->next[e];
            }
            continue;
        }
        /* The return of a pending op: an indeterminate one may not have
         * happened at all; anything else undoes the last choice. */
        if (k->ops[i].op->result == LIN_INDETERMINATE) {
            r = place(k, &p, i, 1);
            if (r < 0) {
                rc = LIN_GAVE_UP;
                break;
            }
            if (r) {
                e = k->next[k->head];
                continue;
            }
        }
        if (p.depth == k->best_depth && !best_taken) {
            memcpy(k->best_set, k->cur_set, words * sizeof(uint64_t));
            k->best_state = p.st;
            k->best_blocker = (int32_t)i;
            best_taken = 1;
        }
        if (p.depth == 0) {
            rc = LIN_VIOLATION;
            break;
        }
        frame_t f = p.stack[--p.depth];
        unlift(k, f.op);
        k->cur_set[f.op / 64] &= ~(1ull << (f.op % 64));
        p.det_left += k->ops[f.op].op->result != LIN_INDETERMINATE;
        p.st = f.st;
        p.ha ^= k->ops[f.op].z1;
        p.hb ^= k->ops[f.op].z2;
        /* Resume after the undone op's call; one undone at its return
         * (choice 1) resumes there, finds it visited and backtracks on. */
        e = 2 * f.op + (f.choice == 1);
        first_choice = 1;
    }
    free(p.stack);
    return rc;
}

static void describe(const kctx_t *k, uint64_t val, char *buf, size_t n)
{
    if (k->cfg && k->cfg->describe_val)
        k->cfg->describe_val(val, buf, n);
    else
        snprintf(buf, n, "%#llx", (unsigned long long)val);
}

static void fmt_time(char *buf, size_t n, uint64_t t, uint64_t base)
{
    if (t == LIN_NEVER)
        snprintf(buf, n, "never");
    else
        snprintf(buf, n, "%.3f", (double)(t - base) / 1000.0);
}

static void print_op(FILE *f, const kctx_t *k, uint32_t i, uint64_t base, const char *mark)
{
    const lin_op_t *op = k->ops[i].op;
    char t0[32], t1[32], v[96], args[160] = "", res[160];
    fmt_time(t0, sizeof t0, op->invoke_ns, base);
    fmt_time(t1, sizeof t1, op->return_ns, base);
    if (is_write(op->kind)) {
        describe(k, op->val, v, sizeof v);
        if (op->kind == LIN_PUT_IF_SEQ)
            snprintf(args, sizeof args, " %s if seq %llu", v, (unsigned long long)op->if_seq);
        else
            snprintf(args, sizeof args, " %s", v);
    }
    if (op->result == LIN_OK && (op->kind == LIN_GET || op->kind == LIN_DELETE)) {
        if (op->got)
            describe(k, op->got, v, sizeof v);
        else
            snprintf(v, sizeof v, "(a value nobody wrote)");
        snprintf(res, sizeof res, "OK %s seq %llu", v, (unsigned long long)op->seq);
    } else if (op->result == LIN_OK) {
        snprintf(res, sizeof res, "OK seq %llu", (unsigned long long)op->seq);
    } else {
        snprintf(res, sizeof res, "%s", lin_result_name(op->result));
    }
    fprintf(f, "  %s #%-5u pid %-6d thread %-2d [%12s, %12s] %s%s -> %s\n", mark, i,
            (int)op->pid, (int)op->thread, t0, t1, lin_kind_name(op->kind), args, res);
}

typedef struct {
    uint64_t t;
    uint32_t i;
} byinv_t;

static int cmp_byinv(const void *x, const void *y)
{
    const byinv_t *a = x, *b = y;
    if (a->t != b->t)
        return a->t < b->t ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

#define REPORT_OPS 40
#define REPORT_BEFORE 6

/* Explain where the search stuck: the longest prefix it linearized, the
 * state it left, the op that could not be placed, the ops around it. */
static void report(const kctx_t *k, const char *key, size_t indet, int rc)
{
    FILE *f = k->cfg ? k->cfg->report : NULL;
    if (!f)
        return;
    uint64_t base = UINT64_MAX;
    for (size_t i = 0; i < k->n; i++)
        if (k->ops[i].op->invoke_ns < base)
            base = k->ops[i].op->invoke_ns;
    if (rc == LIN_GAVE_UP) {
        fprintf(f, "linearizability: key %s: search gave up after %llu configurations "
                "(%zu ops, %zu indeterminate)\n", key, (unsigned long long)k->configs, k->n, indet);
        return;
    }
    fprintf(f, "linearizability: key %s: NOT linearizable%s: %zu ops (%zu indeterminate), "
            "%llu configurations searched\n", key,
            (k->flags & LIN_SEQ_INCREASES) ? " (with rising versions)" : "", k->n, indet,
            (unsigned long long)k->configs);
    fprintf(f, "  the longest linearizable prefix holds %zu ops and leaves the key ", k->best_depth);
    if (k->best_state < 0) {
        fprintf(f, "absent\n");
    } else {
        char v[96];
        const lin_op_t *w = k->ops[k->best_state].op;
        describe(k, w->val, v, sizeof v);
        fprintf(f, "= %s seq %llu (op #%d)\n", v,
                (unsigned long long)k->ops[k->best_state].wseq, k->best_state);
    }
    if (k->best_blocker < 0)
        return;
    uint32_t b = (uint32_t)k->best_blocker;
    fprintf(f, "  no pending op can be placed before this one returns:\n");
    print_op(f, k, b, base, ">");
    const kop_t *bo = &k->ops[b];
    if (bo->writer >= 0 && bo->op->result == LIN_OK) {
        fprintf(f, "  the write it read:\n");
        print_op(f, k, (uint32_t)bo->writer,
                 base, (k->best_set[bo->writer / 64] >> (bo->writer % 64)) & 1 ? "*" : " ");
    }
    /* The ops that overlap [t0, the blocker's return], where t0 is the
     * earliest of: the first pending invoke, the return of the write the
     * blocker read, the invoke of the write the prefix ended with. */
    uint64_t t0 = bo->op->invoke_ns, t1 = bo->op->return_ns;
    for (size_t i = 0; i < k->n; i++)
        if (!((k->best_set[i / 64] >> (i % 64)) & 1) && k->ops[i].op->invoke_ns < t0)
            t0 = k->ops[i].op->invoke_ns;
    if (bo->writer >= 0 && k->ops[bo->writer].op->return_ns < t0)
        t0 = k->ops[bo->writer].op->return_ns;
    if (k->best_state >= 0 && k->ops[k->best_state].op->invoke_ns < t0)
        t0 = k->ops[k->best_state].op->invoke_ns;
    byinv_t *w = malloc(k->n * sizeof *w);
    if (!w)
        return;
    size_t m = 0;
    for (size_t i = 0; i < k->n; i++) {
        const lin_op_t *op = k->ops[i].op;
        if (op->invoke_ns <= t1 && op->return_ns >= t0)
            w[m++] = (byinv_t){ .t = op->invoke_ns, .i = (uint32_t)i };
    }
    /* And the last ops to return before t0: they may be what placed the
     * prefix's ops early (a read that saw a write's effect). */
    size_t before = 0;
    for (size_t j = 0; j < REPORT_BEFORE; j++) {
        int32_t pick = -1;
        uint64_t lim = j ? k->ops[w[m - 1].i].op->return_ns : t0, best = 0;
        for (size_t i = 0; i < k->n; i++) {
            uint64_t r = k->ops[i].op->return_ns;
            if (r < lim && (pick < 0 || r > best)) {
                pick = (int32_t)i;
                best = r;
            }
        }
        if (pick < 0)
            break;
        w[m++] = (byinv_t){ .t = k->ops[pick].op->invoke_ns, .i = (uint32_t)pick };
        before++;
    }
    qsort(w, m, sizeof *w, cmp_byinv);
    fprintf(f, "  the ops overlapping [%.3f, %.3f] and the %zu that returned last before it, by "
            "invoke time (us from the key's first invoke; * = in the prefix):\n",
            (double)(t0 - base) / 1000.0, (double)(t1 - base) / 1000.0, before);
    /* At most REPORT_OPS: the first quarter and the last of them. */
    size_t head = m > REPORT_OPS ? REPORT_OPS / 4 : m;
    size_t tail_from = m > REPORT_OPS ? m - (REPORT_OPS - head) : m;
    for (size_t j = 0; j < m; j++) {
        if (j == head && j < tail_from) {
            fprintf(f, "  ... %zu ops left out\n", tail_from - head);
            j = tail_from;
        }
        uint32_t i = w[j].i;
        print_op(f, k, i, base, (k->best_set[i / 64] >> (i % 64)) & 1 ? "*" : (i == b ? ">" : " "));
    }
    free(w);
}

typedef struct {
    uint64_t val;
    int32_t i;
} vslot_t;

/* Check the ops of one key (indexes into all[]). */
static int check_key(const lin_op_t *all, const size_t *idx, size_t n, const lin_config_t *cfg,
                     unsigned flags, const char *key, lin_stats_t *stats, int quiet)
{
    int rc = LIN_GAVE_UP;
    kctx_t k = { .cfg = cfg, .flags = flags };
    k.budget = cfg && cfg->max_configs ? cfg->max_configs : DEFAULT_BUDGET;
    k.ops = calloc(n ? n : 1, sizeof *k.ops);
    size_t words = (n + 63) / 64 + 1, cap = 16;
    while (cap < 2 * n + 2)
        cap *= 2;
    vslot_t *vals = calloc(cap, sizeof *vals);
    sortent_t *ents = malloc((2 * n + 1) * sizeof *ents);
    k.next = malloc((2 * n + 2) * sizeof *k.next);
    k.prev = malloc((2 * n + 2) * sizeof *k.prev);
    k.best_set = calloc(words, sizeof(uint64_t));
    k.cur_set = calloc(words, sizeof(uint64_t));
    FILE *f = cfg && !quiet ? cfg->report : NULL;
    if (!k.ops || !vals || !ents || !k.next || !k.prev || !k.best_set || !k.cur_set)
        goto out;
    k.n = n;
    size_t indet = 0;
    uint64_t seed = 0x5eed0f11ea71ull;
    for (size_t i = 0; i < n; i++) {
        const lin_op_t *op = &all[idx[i]];
        k.ops[i] = (kop_t){ .op = op, .writer = -1, .wseq = SEQ_UNKNOWN };
        k.ops[i].z1 = splitmix(&seed);
        k.ops[i].z2 = splitmix(&seed);
        indet += op->result == LIN_INDETERMINATE;
        if (op->return_ns < op->invoke_ns) {
            if (f)
                fprintf(f, "linearizability: key %s: op %zu returns before its invoke\n", key, i);
            goto out;
        }
        if (op->result == LIN_INDETERMINATE && op->kind == LIN_GET) {
            if (f)
                fprintf(f, "linearizability: key %s: an indeterminate get was not dropped\n", key);
            goto out;
        }
        if (!is_write(op->kind))
            continue;
        if (op->result == LIN_OK)
            k.ops[i].wseq = op->seq;
        if (op->val == 0) {
            if (f)
                fprintf(f, "linearizability: key %s: op %zu writes value id 0\n", key, i);
            goto out;
        }
        size_t j = (size_t)(op->val * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
        while (vals[j].val && vals[j].val != op->val)
            j = (j + 1) & (cap - 1);
        if (vals[j].val) {
            if (f)
                fprintf(f, "linearizability: key %s: value id %#llx written twice\n", key,
                        (unsigned long long)op->val);
            goto out;
        }
        vals[j] = (vslot_t){ .val = op->val, .i = (int32_t)i };
    }
    /* Each read names its write; an indeterminate write takes the version
     * its first reader saw. */
    for (size_t i = 0; i < n; i++) {
        const lin_op_t *op = k.ops[i].op;
        if (op->result != LIN_OK || (op->kind != LIN_GET && op->kind != LIN_DELETE) || !op->got)
            continue;
        size_t j = (size_t)(op->got * 0x9e3779b97f4a7c15ull >> 20) & (cap - 1);
        while (vals[j].val && vals[j].val != op->got)
            j = (j + 1) & (cap - 1);
        if (!vals[j].val)
            continue;
        kop_t *w = &k.ops[vals[j].i];
        k.ops[i].writer = vals[j].i;
        if (w->op->result == LIN_INDETERMINATE && w->wseq == SEQ_UNKNOWN)
            w->wseq = op->seq;
    }
    for (uint32_t i = 0; i < n; i++) {
        ents[2 * i] = (sortent_t){ .t = k.ops[i].op->invoke_ns, .e = 2 * i };
        ents[2 * i + 1] = (sortent_t){ .t = k.ops[i].op->return_ns, .e = 2 * i + 1 };
    }
    qsort(ents, 2 * n, sizeof *ents, cmp_ent);
    k.head = (uint32_t)(2 * n);
    k.end = (uint32_t)(2 * n + 1);
    uint32_t p = k.head;
    for (size_t j = 0; j < 2 * n; j++) {
        k.next[p] = ents[j].e;
        k.prev[ents[j].e] = p;
        p = ents[j].e;
    }
    k.next[p] = k.end;
    k.prev[k.end] = p;
    rc = search(&k);
    if (stats) {
        stats->ops += n;
        stats->indeterminate += indet;
        stats->configs += k.configs;
    }
    if (rc != LIN_LINEARIZABLE && !quiet)
        report(&k, key, indet, rc);
out:
    free(k.ops);
    free(vals);
    free(ents);
    free(k.next);
    free(k.prev);
    free(k.best_set);
    free(k.cur_set);
    free(k.memo);
    return rc;
}

typedef struct {
    uint16_t key;
    size_t i;
} bykey_t;

static int cmp_bykey(const void *x, const void *y)
{
    const bykey_t *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->i < b->i ? -1 : a->i > b->i;
}

int lin_check(const lin_op_t *ops, size_t n, const lin_config_t *cfg, lin_stats_t *stats)
{
    lin_stats_t local;
    if (!stats)
        stats = &local;
    memset(stats, 0, sizeof *stats);
    stats->bad_key = -1;
    bykey_t *order = malloc((n ? n : 1) * sizeof *order);
    size_t *idx = malloc((n ? n : 1) * sizeof *idx);
    if (!order || !idx) {
        free(order);
        free(idx);
        return LIN_GAVE_UP;
    }
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!(ops[i].kind == LIN_GET && ops[i].result == LIN_INDETERMINATE))
            order[m++] = (bykey_t){ .key = ops[i].key, .i = i };
    qsort(order, m, sizeof *order, cmp_bykey);
    unsigned flags = cfg ? cfg->flags : 0;
    int rc = LIN_LINEARIZABLE;
    for (size_t s = 0; s < m;) {
        size_t e = s;
        while (e < m && order[e].key == order[s].key) {
            idx[e - s] = order[e].i;
            e++;
        }
        unsigned key = order[s].key;
        char name[128];
        if (cfg && cfg->key_names && key < cfg->nkey_names)
            snprintf(name, sizeof name, "\"%s\"", cfg->key_names[key]);
        else
            snprintf(name, sizeof name, "#%u", key);
        stats->keys++;
        int r = check_key(ops, idx, e - s, cfg, flags, name, stats, 0);
        if (r != LIN_LINEARIZABLE) {
            stats->bad_keys++;
            if (stats->bad_key < 0)
                stats->bad_key = (int)key;
            if (rc == LIN_LINEARIZABLE || r == LIN_VIOLATION)
                rc = r;
            /* Say whether the register alone fails, or only the rule that
             * versions rise. */
            if (r == LIN_VIOLATION && (flags & LIN_SEQ_INCREASES) && cfg && cfg->report) {
                lin_stats_t again = { 0 };
                int r2 = check_key(ops, idx, e - s, cfg, flags & ~LIN_SEQ_INCREASES, name, &again, 1);
                fprintf(cfg->report, "  without the rising-version rule the key is %s\n",
                        r2 == LIN_LINEARIZABLE ? "linearizable: versions went backwards"
                        : r2 == LIN_VIOLATION ? "still not linearizable" : "undecided (gave up)");
            }
        }
        s = e;
    }
    free(order);
    free(idx);
    return rc;
}
