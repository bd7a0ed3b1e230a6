/* fault.c -- power-loss and read-error simulation under fileio.c, for
 * tests only (see fault.h for the model).  Compiled into the engine only
 * by fault builds (-DKV_FAULT_INJECT); a single lock serialises every
 * tracked operation so a power cut sees one consistent state. */
#include <dirent.h>
#include <execinfo.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include "fault.h"

#define GRAVE_PREFIX "FAULT-GRAVE-"

typedef struct { dev_t dev; ino_t ino; uint64_t durable; } inode_t;
typedef struct { char name[NAME_MAX + 1]; ino_t ino; } dirent_t;
typedef struct { void *v; size_t n, cap; } vec_t;

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int armed;
static char dir_path[PATH_MAX];
static uint64_t ops, cut_at, graves_made;
static vec_t inodes;     /* inode_t: files written since arming */
static vec_t listing;    /* dirent_t: the durable directory listing */
static vec_t graves;     /* dirent_t: hidden links to unlinked/replaced files */

static void die(const char *what, const char *arg)
{
    fprintf(stderr, "fault layer: %s %s: the power-loss model cannot follow\n", what, arg);
    void *frames[32];
    backtrace_symbols_fd(frames, backtrace(frames, 32), 2);
    abort();
}

static void *vec_push(vec_t *v, size_t size)
{
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 64;
        if (!(v->v = realloc(v->v, v->cap * size)))
            die("out of memory", "");
    }
    return (char *)v->v + size * v->n++;
}

static int in_dir(const char *path)
{
    size_t n = strlen(dir_path);
    return armed && strncmp(path, dir_path, n) == 0 && path[n] == '/'
           && !strchr(path + n + 1, '/');
}

static int is_grave(const char *name)
{
    return strncmp(name, GRAVE_PREFIX, sizeof GRAVE_PREFIX - 1) == 0;
}

static void snapshot_listing(void)
{
    listing.n = 0;
    DIR *d = opendir(dir_path);
    if (!d)
        die("cannot list", dir_path);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || is_grave(e->d_name))
            continue;
        dirent_t *l = vec_push(&listing, sizeof *l);
        snprintf(l->name, sizeof l->name, "%s", e->d_name);
        l->ino = e->d_ino;
    }
    closedir(d);
}

/* The record for fd's inode; a file first seen is durable as it is. */
static inode_t *track(int fd)
{
    struct stat st;
    if (fstat(fd, &st) < 0)
        die("cannot stat", "a written file");
    inode_t *in = inodes.v;
    for (size_t i = 0; i < inodes.n; i++)
        if (in[i].dev == st.st_dev && in[i].ino == st.st_ino)
            return &in[i];
    inode_t *n = vec_push(&inodes, sizeof *n);
    n->dev = st.st_dev;
    n->ino = st.st_ino;
    n->durable = (uint64_t)st.st_size;
    return n;
}

static void forget(dev_t dev, ino_t ino)
{
    inode_t *in = inodes.v;
    for (size_t i = 0; i < inodes.n; i++)
        if (in[i].dev == dev && in[i].ino == ino) {
            in[i] = in[--inodes.n];
            return;
        }
}

/* Keep path's file reachable under a hidden name until the next
 * directory sync makes its removal durable. */
static void bury(const char *path)
{
    struct stat st;
    if (!in_dir(path) || lstat(path, &st) < 0)
        return;
    dirent_t *g = vec_push(&graves, sizeof *g);
    snprintf(g->name, sizeof g->name, GRAVE_PREFIX "%d-%llu", (int)getpid(),
             (unsigned long long)graves_made++);
    g->ino = st.st_ino;
    char to[PATH_MAX + NAME_MAX + 2];
    snprintf(to, sizeof to, "%s/%s", dir_path, g->name);
    if (link(path, to) < 0)
        die("cannot link", path);
}

void fault_power_arm(const char *dir, uint64_t after)
{
    pthread_mutex_lock(&mu);
    snprintf(dir_path, sizeof dir_path, "%s", dir);
    armed = 1;
    ops = 0;
    cut_at = after;
    inodes.n = graves.n = 0;
    snapshot_listing();
    pthread_mutex_unlock(&mu);
}

uint64_t fault_ops(void)
{
    pthread_mutex_lock(&mu);
    uint64_t n = ops;
    pthread_mutex_unlock(&mu);
    return n;
}

static void path_of(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", dir_path, name);
}

/* Called with mu held; never returns and never unlocks, so no other
 * thread's file operation can follow the cut. */
static void cut(void) __attribute__((noreturn));
static void cut(void)
{
    char p[PATH_MAX + NAME_MAX + 2];
    struct dirent *e;
    DIR *d = opendir(dir_path);
    if (!d)
        die("cannot list", dir_path);
    /* Unsynced bytes are gone: every file back to its durable length. */
    while ((e = readdir(d))) {
        struct stat st;
        path_of(p, sizeof p, e->d_name);
        if (e->d_name[0] == '.' || lstat(p, &st) < 0 || !S_ISREG(st.st_mode))
            continue;
        inode_t *in = inodes.v;
        for (size_t i = 0; i < inodes.n; i++)
            if (in[i].dev == st.st_dev && in[i].ino == st.st_ino
                && (uint64_t)st.st_size > in[i].durable && truncate(p, (off_t)in[i].durable) < 0)
                die("cannot truncate", p);
    }
    /* Unsynced names are gone: the durable listing comes back. */
    dirent_t *l = listing.v, *g = graves.v;
    for (size_t i = 0; i < listing.n; i++) {
        struct stat st;
        path_of(p, sizeof p, l[i].name);
        if (lstat(p, &st) == 0 && st.st_ino == l[i].ino)
            continue;
        size_t j = 0;
        while (j < graves.n && g[j].ino != l[i].ino)
            j++;
        char from[PATH_MAX + NAME_MAX + 2];
        if (j == graves.n)
            die("lost a durable file", l[i].name);
        path_of(from, sizeof from, g[j].name);
        if (link(from, p) < 0 && (errno != EEXIST || unlink(p) < 0 || link(from, p) < 0))
            die("cannot restore", l[i].name);
    }
    rewinddir(d);
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        size_t i = 0;
        while (i < listing.n && strcmp(l[i].name, e->d_name) != 0)
            i++;
        path_of(p, sizeof p, e->d_name);
        if (i == listing.n && unlink(p) < 0)
            die("cannot remove", p);
    }
    closedir(d);
    _exit(FAULT_EXIT);
}

void fault_power_cut(void)
{
    pthread_mutex_lock(&mu);
    cut();
}

static volatile int64_t *longest_sync;   /* mu */
static __thread int64_t op_start_ns;     /* this thread's operation under mu */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

void fault_publish_longest_sync(volatile int64_t *out)
{
    pthread_mutex_lock(&mu);
    longest_sync = out;
    pthread_mutex_unlock(&mu);
}

void fault_enter(void)
{
    pthread_mutex_lock(&mu);
    if (longest_sync)
        op_start_ns = mono_ns();
    if (armed && ++ops == cut_at)
        cut();
}

void fault_leave(void)
{
    pthread_mutex_unlock(&mu);
}

void fault_before_write(int fd, uint64_t off)
{
    if (armed && off < track(fd)->durable) {
        char link[64], path[PATH_MAX] = "?";
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, path, sizeof path - 1);
        path[n > 0 ? n : 1] = '\0';
        fprintf(stderr, "fault layer: write at %llu, below the %llu synced bytes\n",
                (unsigned long long)off, (unsigned long long)track(fd)->durable);
        die("overwrite of synced bytes in", path);
    }
}

void fault_after_sync(int fd)
{
    struct stat st;
    if (longest_sync) {
        int64_t took = mono_ns() - op_start_ns;
        if (took > *longest_sync)
            *longest_sync = took;
    }
    if (armed && fstat(fd, &st) == 0)
        track(fd)->durable = (uint64_t)st.st_size;
}

void fault_before_truncate(int fd)
{
    if (armed)
        track(fd);
}

void fault_after_truncate(int fd, uint64_t size)
{
    if (armed) {
        inode_t *in = track(fd);
        if (size < in->durable)
            in->durable = size;
    }
}

void fault_before_unlink(const char *path)
{
    bury(path);
}

/* Both names: the old name may be durable, and so may the file that the
 * new name replaces. */
void fault_before_rename(const char *from, const char *to)
{
    bury(from);
    bury(to);
}

void fault_after_sync_dir(const char *dir)
{
    if (!armed || strcmp(dir, dir_path) != 0)
        return;
    snapshot_listing();
    char p[PATH_MAX + NAME_MAX + 2];
    dirent_t *g = graves.v;
    for (size_t i = 0; i < graves.n; i++) {
        struct stat st;
        path_of(p, sizeof p, g[i].name);
        /* A file whose last name goes is forgotten: its inode number may
         * come back as a new file's. */
        if (lstat(p, &st) == 0 && st.st_nlink == 1)
            forget(st.st_dev, st.st_ino);
        unlink(p);
    }
    graves.n = 0;
}

int fault_read_error(int fd)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n < 5)
        return 0;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (strcmp(path + n - 4, ".sst") != 0 || !slash)
        return 0;
    snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "%s", FAULT_EIO_FLAG);
    if (access(path, F_OK) != 0)
        return 0;
    errno = EIO;
    return 1;
}

/* ---- errors on demand ---- */

#define MAX_RULES 8
typedef struct {
    int op, err, die;
    char ext[16];
    uint64_t nth, count, seen;
    size_t partial;
    void (*fn)(void *);
    void *arg;
} rule_t;
static rule_t rules[MAX_RULES];
static int nrules;
static pthread_mutex_t rule_mu = PTHREAD_MUTEX_INITIALIZER;

void fault_fail(int op, const char *ext, uint64_t nth, uint64_t count, int err,
                size_t partial, int die)
{
    pthread_mutex_lock(&rule_mu);
    if (nrules < MAX_RULES) {
        rule_t *r = &rules[nrules++];
        r->op = op;
        snprintf(r->ext, sizeof r->ext, "%s", ext ? ext : "");
        r->nth = nth ? nth : 1;
        r->count = count;
        r->seen = 0;
        r->err = err;
        r->partial = partial;
        r->die = die;
        r->fn = NULL;
    }
    pthread_mutex_unlock(&rule_mu);
}

/* A rule that runs fn at the nth matching operation, which then goes
 * ahead (err 0) or fails with err. */
static void add_call(int op, const char *ext, uint64_t nth, void (*fn)(void *), void *arg, int err)
{
    pthread_mutex_lock(&rule_mu);
    int before = nrules;
    pthread_mutex_unlock(&rule_mu);
    fault_fail(op, ext, nth, 1, 0, 0, 0);
    pthread_mutex_lock(&rule_mu);
    if (nrules > before) {
        rules[nrules - 1].fn = fn;
        rules[nrules - 1].arg = arg;
        rules[nrules - 1].err = err;
    }
    pthread_mutex_unlock(&rule_mu);
}

void fault_call(int op, const char *ext, uint64_t nth, void (*fn)(void *), void *arg)
{
    add_call(op, ext, nth, fn, arg, 0);
}

void fault_call_fail(int op, const char *ext, uint64_t nth, void (*fn)(void *), void *arg, int err)
{
    add_call(op, ext, nth, fn, arg, err);
}

void fault_clear(void)
{
    pthread_mutex_lock(&rule_mu);
    nrules = 0;
    pthread_mutex_unlock(&rule_mu);
}

uint64_t fault_seen(void)
{
    pthread_mutex_lock(&rule_mu);
    uint64_t n = 0;
    for (int i = 0; i < nrules; i++)
        n += rules[i].seen;
    pthread_mutex_unlock(&rule_mu);
    return n;
}

static int name_ends(int fd, const char *path, const char *ext)
{
    char buf[PATH_MAX];
    if (!*ext)
        return 1;
    if (fd >= 0) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, buf, sizeof buf - 1);
        if (n <= 0)
            return 0;
        buf[n] = '\0';
        path = buf;
    }
    if (!path)
        return 0;
    size_t pl = strlen(path), el = strlen(ext);
    return pl >= el && strcmp(path + pl - el, ext) == 0;
}

/* The flag file `flag` exists in the directory of fd's file. */
static int flag_beside(int fd, const char *flag)
{
    char link[64], path[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0)
        return 0;
    path[n] = '\0';
    char *slash = strrchr(path, '/');
    if (!slash)
        return 0;
    snprintf(slash + 1, sizeof path - (size_t)(slash + 1 - path), "%s", flag);
    return access(path, F_OK) == 0;
}

int fault_check(int op, int fd, const char *path, size_t *partial)
{
    if (op == FAULT_SYNC && fd >= 0 && name_ends(fd, NULL, ".log") && flag_beside(fd, FAULT_SYNC_FLAG))
        return EIO;
    pthread_mutex_lock(&rule_mu);
    int err = 0;
    void (*fn)(void *) = NULL;
    void *arg = NULL;
    int fn_err = 0;   /* fault_call_fail: the error after fn */
    for (int i = 0; i < nrules && !err; i++) {
        rule_t *r = &rules[i];
        if (r->op != op || !name_ends(fd, path, r->ext))
            continue;
        uint64_t n = ++r->seen;
        if (n < r->nth || (r->count && n >= r->nth + r->count))
            continue;
        if (r->fn) {
            fn = r->fn;
            arg = r->arg;
            fn_err = r->err;
            continue;
        }
        err = r->err ? r->err : EIO;
        if (partial)
            *partial = r->partial;
        if (r->die) {
            if (op == FAULT_WRITE && r->partial)
                err = -1;   /* the caller writes the partial bytes, then dies */
            else
                _exit(FAULT_EXIT);
        }
    }
    pthread_mutex_unlock(&rule_mu);
    if (fn && !err) {
        fn(arg);
        err = fn_err;
    }
    return err;
}
