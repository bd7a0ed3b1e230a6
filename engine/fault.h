/* fault.h -- a test-only layer under fileio.c that simulates power loss
 * and read errors.  It exists only in builds made with -DKV_FAULT_INJECT
 * (make fault-test); production builds have none of it.
 *
 * Power loss: once armed on a data directory, the layer remembers, for
 * every file the engine writes, how many bytes an fdatasync made durable,
 * and for the directory, the listing its last fsync made durable (names
 * the engine unlinks or renames over stay alive as hidden hard links until
 * then).  After a chosen number of file operations it "cuts the power":
 * every file goes back to its durable length, the directory to its durable
 * listing, and the process _exits with FAULT_EXIT -- exactly what a machine
 * that lost power would find on its disk, if unsynced data is all lost.
 *
 * Read errors: a pread on an .sst file fails with EIO while a file named
 * FAULT-EIO exists in the same directory (SSTs are only ever read with
 * pread, in every build).
 *
 * Errors on demand: fault_fail makes one chosen operation fail with a
 * chosen errno (a short write first writes some of its bytes), or makes
 * the process die inside it, holding whatever locks it holds. */
#ifndef KV_FAULT_H
#define KV_FAULT_H

#include <stddef.h>
#include <stdint.h>

#define FAULT_EXIT 86
#define FAULT_EIO_FLAG "FAULT-EIO"
/* While this file exists beside a log, every fdatasync of the log fails
 * with EIO (for tests through Apache, which cannot call fault_fail). */
#define FAULT_SYNC_FLAG "FAULT-SYNC-EIO"

/* Track dir; cut the power at the `after`-th file operation from now
 * (0: track, never cut). */
void fault_power_arm(const char *dir, uint64_t after);
/* File operations seen since arming. */
uint64_t fault_ops(void);
/* From now on, the longest fdatasync of a file this process has made
 * (the system call alone, in ns) is also kept at *out: a test's forked
 * writer publishes it to its parent through shared memory, so a bound
 * on what interval sync may lose can allow for the disk's speed. */
void fault_publish_longest_sync(volatile int64_t *out);
/* Cut the power now. */
void fault_power_cut(void) __attribute__((noreturn));

/* FAULT_LINK: a snapshot's hard link (fio_link), matched on the name of
 * the file linked; it is not part of the power-loss model (a snapshot's
 * private directory is never synced and nothing recovers it). */
enum { FAULT_WRITE, FAULT_SYNC, FAULT_OPEN, FAULT_TRUNCATE, FAULT_SYNC_DIR, FAULT_APPLY,
       FAULT_LINK };

/* From now on, the nth (1: the next) operation of kind op on a file whose
 * name ends in ext (NULL: any file) fails with err, and so do the `count`
 * - 1 matching operations after it (count 0: every one from the nth on).
 * A write first writes `partial` of its bytes.  die: instead of failing,
 * _exit(FAULT_EXIT) inside the operation (after the partial bytes).
 * Up to 8 rules at once per process (each counts its own matches);
 * fault_clear removes them all. */
void fault_fail(int op, const char *ext, uint64_t nth, uint64_t count, int err,
                size_t partial, int die);
void fault_clear(void);
/* From now on, the nth matching operation (as for fault_fail) first calls
 * fn(arg), outside the layer's locks, then goes ahead normally: a test
 * runs another process's step at that exact instant.  Shares the 8 rules;
 * fault_clear removes it. */
void fault_call(int op, const char *ext, uint64_t nth, void (*fn)(void *), void *arg);
/* As fault_call, but the operation then fails with err instead of going
 * ahead: another process's step at the instant just before a failure
 * (a snapshot taken inside an fdatasync that is about to fail, say). */
void fault_call_fail(int op, const char *ext, uint64_t nth, void (*fn)(void *), void *arg, int err);
/* Matching operations of the rule seen so far. */
uint64_t fault_seen(void);
/* The hook: 0 to go ahead, else the errno to fail with (*partial: bytes
 * to write first), or -1: write the partial bytes, then _exit(FAULT_EXIT).  fd or path names the file (fd < 0: path). */
int fault_check(int op, int fd, const char *path, size_t *partial);

/* Hooks called by fileio.c (fault builds only).  fault_enter counts one
 * operation (and may cut the power) and holds the layer's lock until
 * fault_leave, so an operation and its bookkeeping are one step. */
void fault_enter(void);
void fault_leave(void);
void fault_before_write(int fd, uint64_t off);
void fault_after_sync(int fd);
void fault_before_truncate(int fd);
void fault_after_truncate(int fd, uint64_t size);
void fault_before_unlink(const char *path);
void fault_before_rename(const char *from, const char *to);
void fault_after_sync_dir(const char *dir);
/* Nonzero (errno set to EIO) when a read of fd must fail. */
int fault_read_error(int fd);

#endif
