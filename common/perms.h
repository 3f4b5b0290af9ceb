/*
 * perms: who may read what the daemons keep on disk.
 *
 * A local user must not read events, spools, offsets or keys. So every
 * program starts with umask 077 (tc_perms_umask), so that whatever it
 * creates — SQLite files and their -wal and -shm, lock files — is 0600;
 * state directories are made private at start (tc_perms_dir); files left
 * wider by an older version are tightened when opened (tc_perms_tighten);
 * and a private key that group or others may access is refused, as
 * OpenSSH and PostgreSQL do (tc_perms_key_open). Every check is made on
 * the opened descriptor, so nothing can be swapped between the check
 * and the use.
 */
#ifndef TC_PERMS_H
#define TC_PERMS_H

#include <stddef.h>

/* Set the process umask to 077. Call first thing in main. */
void tc_perms_umask(void);

/*
 * Make path a private state directory: create it (and its parents) 0700
 * if missing; if it exists and group or others may access it, tighten
 * it to 0700. Refused (negative errno, message in err naming the path
 * and its mode): not a directory, owned by another user than ours, or
 * shared (sticky or world-writable, like /tmp: never ours to tighten).
 */
int tc_perms_dir(const char *path, char *err, size_t errlen);

/*
 * What tc_perms_dir would say about path, for -n: changes nothing on
 * disk. An existing directory is judged as tc_perms_dir judges it (one
 * that is merely too wide passes: start-up tightens it) and must be
 * writable by us; a missing one must be creatable, i.e. its nearest
 * existing ancestor is a directory we may write in. 0 or a negative
 * errno with a message in err.
 */
int tc_perms_dir_check(const char *path, char *err, size_t errlen);

/*
 * For -n: a database file the daemon will open read-write. Missing is
 * fine (start-up creates it); present, it must be a regular file we
 * may read and write. 0 or a negative errno with a message in err.
 */
int tc_perms_file_check(const char *path, char *err, size_t errlen);

/*
 * If path exists and group or others may access it, chmod it to its
 * owner bits only (and log it once). A missing file is fine. 0 or a
 * negative errno (err gets a message).
 */
int tc_perms_tighten(const char *path, char *err, size_t errlen);

/* tc_perms_tighten on an SQLite database and its -wal, -shm, -journal. */
int tc_perms_tighten_db(const char *path, char *err, size_t errlen);

/*
 * Open a private key file for reading: a regular file whose mode gives
 * group and others nothing, checked with fstat on the opened
 * descriptor. Returns the descriptor (O_CLOEXEC; the caller closes it)
 * or a negative errno with a message in err, e.g.
 *   "pki/web-01.key: mode 0644 allows group/other access; chmod 600 it"
 */
int tc_perms_key_open(const char *path, char *err, size_t errlen);

#endif
