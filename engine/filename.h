/* filename.h -- the names of the files in a data directory, built in this
 * one place (what each file is: docs/DESIGN.md, "Files in a data
 * directory"; their bytes: docs/FORMAT.md). */
#ifndef KV_FILENAME_H
#define KV_FILENAME_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define FN_MANIFEST "MANIFEST"
#define FN_MANIFEST_TMP "MANIFEST.tmp"
#define FN_SHM "SHM"
#define FN_STATS "STATS"
#define FN_LOCK "LOCK"
#define FN_FLUSHLOCK "FLUSHLOCK"
#define FN_REPAIR "REPAIR"
#define FN_REPAIR_TMP "REPAIR.tmp"
/* A snapshot's private directory: SNAP-<pid>-<n>.tmp (snapshot.c). */
#define FN_SNAP_PREFIX "SNAP-"
#define FN_SNAP_SUFFIX ".tmp"

/* "dir/NNNNNN.ext": a log ("log") or an SST ("sst"). */
static inline void fn_numbered(char *buf, size_t n, const char *dir, uint64_t number, const char *ext)
{
    snprintf(buf, n, "%s/%06llu.%s", dir, (unsigned long long)number, ext);
}

/* "dir/name": one of the FN_ names, or a name read from the directory. */
static inline void fn_named(char *buf, size_t n, const char *dir, const char *name)
{
    snprintf(buf, n, "%s/%s", dir, name);
}

/* Is name a snapshot's private directory? */
static inline int fn_is_snapshot(const char *name)
{
    size_t n = strlen(name), p = sizeof(FN_SNAP_PREFIX) - 1, s = sizeof(FN_SNAP_SUFFIX) - 1;
    return n > p + s && strncmp(name, FN_SNAP_PREFIX, p) == 0
           && strcmp(name + n - s, FN_SNAP_SUFFIX) == 0;
}

#endif
