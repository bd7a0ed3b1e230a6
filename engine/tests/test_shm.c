/* test_shm.c -- the log lock in SHM when its holder's process dies with
 * another of its threads waiting: the kernel wakes one waiter for a dead
 * owner, and if that waiter is a thread of the dying process too, it dies
 * without taking the lock and no other waiter is woken.  A waiter in
 * another process must still get the lock (with EOWNERDEAD), not sleep
 * for ever. */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include "testutil.h"
#include "shm.h"

typedef struct {
    pid_t waiter_tid;     /* the dying process's waiting thread */
    int held;             /* its holder has the lock */
} board_t;

static board_t *board;
static shm_handle_t child_h;

/* Is thread tid (of process pid) asleep (state S in /proc)? */
static int sleeping(pid_t pid, pid_t tid)
{
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%d/task/%d/stat", (int)pid, (int)tid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    return p && p[1] == ' ' && p[2] == 'S';
}

static void *child_waiter(void *arg)
{
    (void)arg;
    __atomic_store_n(&board->waiter_tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    int died;
    shm_lock(&child_h, &died);   /* blocks: the holder never lets go */
    return NULL;
}

typedef struct {
    shm_handle_t *h;
    pid_t tid;
    int got, died;
    apr_status_t rv;
} parent_waiter_t;

static void *parent_waiter(void *arg)
{
    parent_waiter_t *w = arg;
    __atomic_store_n(&w->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    w->rv = shm_lock(w->h, &w->died);
    __atomic_store_n(&w->got, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void wait_until(int (*cond)(void *), void *arg, const char *what)
{
    time_t t0 = time(NULL);
    while (!cond(arg)) {
        cr_assert_lt(time(NULL) - t0, 10, "timed out waiting until %s", what);
        sched_yield();
    }
}

static pid_t child_pid;
static int child_waiting(void *arg)
{
    (void)arg;
    pid_t t = __atomic_load_n(&board->waiter_tid, __ATOMIC_ACQUIRE);
    return __atomic_load_n(&board->held, __ATOMIC_ACQUIRE) && t && sleeping(child_pid, t);
}
static int parent_waiting(void *arg)
{
    parent_waiter_t *w = arg;
    pid_t t = __atomic_load_n(&w->tid, __ATOMIC_ACQUIRE);
    return t && sleeping(getpid(), t);
}

Test(shm, a_waiter_gets_the_lock_when_the_holders_process_dies_with_a_waiter, .timeout = 60)
{
    char *dir = tu_tmpdir();
    char lockp[4200];
    snprintf(lockp, sizeof lockp, "%s/LOCK", dir);
    int lock_fd = open(lockp, O_RDWR | O_CREAT, 0644);
    cr_assert_geq(lock_fd, 0);
    shm_handle_t h;
    cr_assert_eq(shm_attach(&h, dir, lock_fd), APR_SUCCESS);
    board = mmap(NULL, sizeof *board, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    cr_assert_neq(board, MAP_FAILED);
    memset(board, 0, sizeof *board);
    child_pid = fork();
    cr_assert_geq(child_pid, 0);
    if (child_pid == 0) {
        if (shm_attach(&child_h, dir, lock_fd) != APR_SUCCESS)
            _exit(3);
        int died;
        if (shm_lock(&child_h, &died) != APR_SUCCESS)
            _exit(4);
        __atomic_store_n(&board->held, 1, __ATOMIC_RELEASE);
        pthread_t t;
        pthread_create(&t, NULL, child_waiter, NULL);
        pthread_join(t, NULL);   /* for ever: killed first */
        _exit(5);
    }
    /* The dying process's waiter queues first, then ours. */
    wait_until(child_waiting, NULL, "the child's second thread waits for the lock");
    parent_waiter_t w = { .h = &h };
    pthread_t pt;
    pthread_create(&pt, NULL, parent_waiter, &w);
    wait_until(parent_waiting, &w, "this process's thread waits for the lock");
    kill(child_pid, SIGKILL);
    int status;
    waitpid(child_pid, &status, 0);
    time_t t0 = time(NULL);
    while (!__atomic_load_n(&w.got, __ATOMIC_ACQUIRE) && time(NULL) - t0 < 10)
        sched_yield();
    int got = __atomic_load_n(&w.got, __ATOMIC_ACQUIRE);
    if (got) {
        pthread_join(pt, NULL);
        cr_expect_eq(w.rv, APR_SUCCESS);
        cr_expect(w.died, "the lock reports its holder died");
        shm_consistent(&h);
        shm_unlock(&h);
    }
    cr_assert(got, "a waiter in a live process slept on after the holder's process died");
    shm_detach(&h);
    close(lock_fd);
    munmap(board, sizeof *board);
    tu_rmrf(dir);
    free(dir);
}
