/*
 * sqlerr: the one SQLite result code -> negative errno mapping of the
 * collector's store (docs/internals/store.md, "Errors"). Private to
 * collector/store/: nothing above the store sees an SQLite code.
 *
 * SQLITE_CORRUPT and SQLITE_NOTADB are -EBADMSG: the file's content is
 * not a valid store (a bad message, not a failed device), so a retry
 * will not help and the operator must restore or move the file; -EIO
 * stays for failures of the device or the OS.
 */
#ifndef COLLECTOR_STORE_SQLERR_H
#define COLLECTOR_STORE_SQLERR_H

#include <errno.h>

#include <sqlite3.h>

/* 0 for OK, DONE and ROW; a negative errno otherwise (never 0). */
static inline int
store_sqlerr(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_OK:
    case SQLITE_DONE:
    case SQLITE_ROW:
        return 0;
    case SQLITE_FULL:
        return -ENOSPC;
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
        return -EBUSY;
    case SQLITE_READONLY:
        return -EROFS;
    case SQLITE_NOMEM:
        return -ENOMEM;
    case SQLITE_CANTOPEN:
        return -ENOENT;
    case SQLITE_PERM:
    case SQLITE_AUTH:
        return -EACCES;
    case SQLITE_CORRUPT:
    case SQLITE_NOTADB:
        return -EBADMSG;
    case SQLITE_TOOBIG:
        return -E2BIG;
    case SQLITE_MISUSE:
    case SQLITE_RANGE:
        return -EINVAL;
    default:
        return -EIO;
    }
}

/* store_sqlerr for a call that failed: -EIO where SQLite said OK. */
static inline int
store_sqlfail(int rc)
{
    int e = store_sqlerr(rc);
    return e ? e : -EIO;
}

#endif
