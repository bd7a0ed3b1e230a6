/* datadir.c -- preparing and checking the data directories at start-up
 * (datadir.h).  Runs in the parent, as root when Apache starts as root;
 * the children run as User/Group, so every verdict is that user's: as
 * root, a forked process drops to the child user, looks, and reports
 * back through a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "httpd.h"
#include "apr_file_info.h"
#include "apr_strings.h"
#include "http_config.h"
#include "http_log.h"
#include "unixd.h"

#include "http/datadir.h"

APLOG_USE_MODULE(kvlsm);

#define MSG_MAX 1024

/* snprintf into msg; a long path may be cut, which is fine for a message. */
static void say(char *msg, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void say(char *msg, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, n, fmt, ap);
    va_end(ap);
}

/* "mode 0700, owner root:root" for path. */
static void describe(const struct stat *st, char *buf, size_t n)
{
    struct passwd *pw = getpwuid(st->st_uid);
    struct group *gr = getgrgid(st->st_gid);
    char u[32], g[32];
    snprintf(u, sizeof u, "%ld", (long)st->st_uid);
    snprintf(g, sizeof g, "%ld", (long)st->st_gid);
    snprintf(buf, n, "mode %04o, owner %s:%s", (unsigned)(st->st_mode & 07777),
             pw ? pw->pw_name : u, gr ? gr->gr_name : g);
}

/* The look itself, as whoever runs it.  prepared: the directory has
 * been created and handed over, so it must exist and take a file; else
 * it may be missing (start-up will create it: creator_root says whether
 * root will).  Returns 0, or fills msg and returns an errno. */
static int look(const char *dir, int prepared, int creator_root, char *msg, size_t n)
{
    char path[4096], what[128];
    struct stat st;
    size_t len = strlen(dir);
    if (len == 0 || len >= sizeof path || dir[0] != '/') {
        say(msg, n, "not an absolute path");
        return EINVAL;
    }
    /* Every proper prefix ending before a '/': /a, /a/b, ... */
    const char *deepest = "/";
    char deepest_buf[4096] = "/";
    for (size_t i = 1; i <= len; i++) {
        if (i < len && dir[i] != '/')
            continue;
        memcpy(path, dir, i);
        path[i] = '\0';
        if (stat(path, &st) < 0) {
            int e = errno;
            if (e == ENOENT)
                break;                      /* created from here on */
            say(msg, n, "cannot look at %s: %s", path, strerror(e));
            return e;
        }
        if (!S_ISDIR(st.st_mode)) {
            say(msg, n, "%s is not a directory", path);
            return ENOTDIR;
        }
        if (i == len)
            break;                          /* the directory itself: below */
        if (access(path, X_OK) < 0) {
            int e = errno;
            describe(&st, what, sizeof what);
            say(msg, n, "cannot enter %s (%s): every parent directory must be "
                     "searchable by the child user", path, what);
            return e;
        }
        memcpy(deepest_buf, path, i + 1);
        deepest = deepest_buf;
    }
    if (stat(dir, &st) < 0) {
        if (prepared) {
            say(msg, n, "cannot look at it: %s", strerror(errno));
            return errno;
        }
        /* Missing: whoever creates it must be able to write its parent. */
        if (!creator_root && access(deepest, W_OK | X_OK) < 0) {
            int e = errno;
            struct stat pst;
            what[0] = '\0';
            if (stat(deepest, &pst) == 0)
                describe(&pst, what, sizeof what);
            say(msg, n, "it is missing and cannot be created in %s (%s)", deepest, what);
            return e;
        }
        return 0;
    }
    if (creator_root && !prepared)
        return 0;                           /* it will be handed over first */
    if (access(dir, W_OK | X_OK) < 0) {
        int e = errno;
        describe(&st, what, sizeof what);
        say(msg, n, "cannot write in it (%s)", what);
        return e;
    }
    if (prepared) {
        snprintf(path, sizeof path, "%s/.kvlsm-probe-%ld", dir, (long)getpid());
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
        if (fd < 0) {
            int e = errno;
            say(msg, n, "cannot create a file in it: %s", strerror(e));
            return e;
        }
        close(fd);
        unlink(path);
    }
    return 0;
}

/* look() as the child user: directly when Apache does not run as root
 * (the children are then this user), else in a forked process that drops
 * to User/Group first. */
static int look_as_child_user(const char *dir, int prepared, char *msg, size_t n)
{
    msg[0] = '\0';
    if (geteuid() != 0)
        return look(dir, prepared, 0, msg, n);
    int fds[2];
    if (pipe(fds) < 0) {
        say(msg, n, "cannot check it as the child user: pipe: %s", strerror(errno));
        return errno;
    }
    pid_t pid = fork();
    if (pid < 0) {
        int e = errno;
        close(fds[0]);
        close(fds[1]);
        say(msg, n, "cannot check it as the child user: fork: %s", strerror(e));
        return e;
    }
    if (pid == 0) {
        close(fds[0]);
        char m[MSG_MAX] = "";
        int e;
        if (setgid(ap_unixd_config.group_id) < 0
            || initgroups(ap_unixd_config.user_name, ap_unixd_config.group_id) < 0
            || setuid(ap_unixd_config.user_id) < 0) {
            e = errno;
            say(m, sizeof m, "cannot become the child user: %s", strerror(e));
        }
        else
            e = look(dir, prepared, 1, m, sizeof m);
        char out[MSG_MAX + 16];
        int len = snprintf(out, sizeof out, "%d %s", e, m);
        if (write(fds[1], out, (size_t)len) < 0)
            _exit(2);
        _exit(0);
    }
    close(fds[1]);
    char in[MSG_MAX + 16];
    size_t got = 0;
    for (;;) {
        ssize_t k = read(fds[0], in + got, sizeof in - 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0 || (got += (size_t)k) == sizeof in - 1)
            break;
    }
    in[got] = '\0';
    close(fds[0]);
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    int e = 0;
    char *rest = NULL;
    if (got == 0 || sscanf(in, "%d", &e) != 1 || !(rest = strchr(in, ' '))) {
        say(msg, n, "cannot check it as the child user: the checking process failed");
        return EIO;
    }
    apr_cpystrn(msg, rest + 1, n);
    return e;
}

static const char *child_user(void)
{
    return geteuid() == 0 ? ap_unixd_config.user_name : "Apache's own user";
}

apr_status_t kvlsm_datadir_check(apr_pool_t *p, server_rec *s, const char *dir)
{
    (void)p;
    char msg[MSG_MAX];
    int e = look_as_child_user(dir, 0, msg, sizeof msg);
    if (e == 0)
        return APR_SUCCESS;
    ap_log_error(APLOG_MARK, APLOG_CRIT, APR_FROM_OS_ERROR(e), s, APLOGNO(10911)
                 "KVLSMDataDir %s: the child user (%s) cannot use it: %s",
                 dir, child_user(), msg);
    return APR_FROM_OS_ERROR(e);
}

apr_status_t kvlsm_datadir_prepare(apr_pool_t *p, server_rec *s, const char *dir)
{
    apr_status_t rv = apr_dir_make_recursive(dir, APR_FPROT_OS_DEFAULT, p);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EEXIST(rv)) {
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10901)
                     "KVLSMDataDir %s: cannot create the directory", dir);
        return rv;
    }
    if (geteuid() == 0) {
        /* Children run as User/Group: hand them the directory and what
         * is in it (the engine keeps no subdirectories). */
        uid_t uid = ap_unixd_config.user_id;
        gid_t gid = ap_unixd_config.group_id;
        if (chown(dir, uid, gid) < 0) {
            rv = APR_FROM_OS_ERROR(errno);
            ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10902)
                         "KVLSMDataDir %s: cannot give it to the child user %s",
                         dir, ap_unixd_config.user_name);
            return rv;
        }
        apr_dir_t *d;
        apr_finfo_t fi;
        if (apr_dir_open(&d, dir, p) == APR_SUCCESS) {
            while (apr_dir_read(&fi, APR_FINFO_NAME | APR_FINFO_TYPE, d) == APR_SUCCESS) {
                if (fi.filetype != APR_REG)
                    continue;
                const char *f = apr_pstrcat(p, dir, "/", fi.name, NULL);
                if (chown(f, uid, gid) < 0)
                    ap_log_error(APLOG_MARK, APLOG_WARNING, APR_FROM_OS_ERROR(errno), s,
                                 APLOGNO(10903) "KVLSMDataDir: cannot chown %s", f);
            }
            apr_dir_close(d);
        }
    }
    char msg[MSG_MAX];
    int e = look_as_child_user(dir, 1, msg, sizeof msg);
    if (e != 0) {
        rv = APR_FROM_OS_ERROR(e);
        ap_log_error(APLOG_MARK, APLOG_CRIT, rv, s, APLOGNO(10904)
                     "KVLSMDataDir %s: the child user (%s) cannot use it: %s",
                     dir, child_user(), msg);
        return rv;
    }
    return APR_SUCCESS;
}
