/*
 * runbooks: the collector's knowledge base (docs/runbooks.md).
 *
 * A runbook is a Markdown file with YAML front matter in the directory
 * named by "runbooks: {dir: PATH}" in collector.yaml. runbooks_load
 * reads that directory (not recursively) into an immutable, reference
 * counted struct runbook_set: each file that loads becomes a runbook;
 * each that does not (not a regular file, a symbolic link, too large,
 * broken front matter, ...) is logged as "PATH:LINE: why" and kept as
 * a skipped entry with that reason, and the others stay in force. The
 * collector loads the set at start and on SIGHUP and hands it to the
 * incident runner, which swaps it in between two engine steps; nobody
 * changes a set once it is loaded, so any thread holding a reference
 * may read it.
 *
 * runbook_match is pure (no I/O, no clock, no log): given a set and
 * what is known of an incident (a struct runbook_subject) it says
 * which runbook applies and, for "tocsinctl runbooks test", why each
 * of the others does not. runbook_expand fills an action parameter's
 * template from the subject, as dispatch will.
 */
#ifndef COLLECTOR_RUNBOOKS_H
#define COLLECTOR_RUNBOOKS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* Refusals: what a runbook directory and file may hold. */
#define RUNBOOK_MAX_FILES 1000           /* *.md files in the directory */
#define RUNBOOK_MAX_BYTES (256u * 1024u) /* one file, front matter and body */
#define RUNBOOK_MAX_ID 64                /* bytes of an id or action name */
#define RUNBOOK_MAX_TITLE 200            /* bytes of a title (one line) */
#define RUNBOOK_MAX_LIST 64  /* globs in one match list, links, labels */
#define RUNBOOK_MAX_GLOB 256 /* bytes of one glob, link or label value */
#define RUNBOOK_MAX_PARAMS 32
#define RUNBOOK_MAX_PARAM 1024       /* bytes of one parameter template */
#define RUNBOOK_MAX_PRIORITY 1000000 /* priority is within +- this */
/* Room for one "why" text of the matcher (subject values are cut). */
#define RUNBOOK_WHY_MAX 512

/* A key and a value; in a runbook both owned, in a subject borrowed. */
struct runbook_kv {
    char *key;
    char *val;
};

/* Bits of struct runbook_cond.severities: 1u << enum tc_severity. */
struct runbook_cond {
    char **classes; /* fingerprint class globs, nclasses (owned) */
    size_t nclasses;
    struct runbook_kv *labels; /* key = label name, val = glob (owned) */
    size_t nlabels;
    unsigned severities; /* 0 = any */
    char **rules;        /* problem rules; "none": in no problem (owned) */
    size_t nrules;
    char **hosts; /* host globs (owned) */
    size_t nhosts;
};

struct runbook {
    char *id;    /* [A-Za-z0-9_.-]{1,64}; default: file name less ".md" */
    char *file;  /* path as loaded (dir "/" name); owned */
    char *title; /* one line, no control characters; owned */
    char *body;  /* the Markdown after the front matter; owned */
    struct runbook_cond match;
    int64_t priority; /* higher wins; ties by id (byte order) */
    char **links;     /* owned, nlinks */
    size_t nlinks;
    char *action;              /* action name, NULL = none; owned */
    struct runbook_kv *params; /* templates, sorted by key; owned */
    size_t nparams;
    uint64_t hash; /* FNV-1a (common/hash) of the file's bytes */
};

/* A file that was not loaded, and why. */
struct runbook_skip {
    char *file;  /* path (dir "/" name); owned */
    char *error; /* "PATH:LINE: why" as logged (raw; escape to print) */
};

struct runbook_set {
    atomic_uint refs;  /* runbook_set_ref / _unref */
    char *dir;         /* as configured; owned */
    struct runbook *v; /* loaded, sorted by priority (high first), id */
    size_t n;
    struct runbook_skip *skipped; /* in file name order */
    size_t nskipped;
    uint64_t hash; /* of every loaded runbook's id and hash, in order */
    uint8_t *blob; /* the loaded files as recorded for the engine
                      (runbooks_from_blob): for each, in file name
                      order, a 4-byte big-endian name length, the
                      name, a 4-byte big-endian length and the bytes;
                      owned, NULL when empty */
    size_t bloblen;
};

/*
 * Read dir into a new set (one reference, the caller's). Broken files
 * are logged with log_warnx and recorded in skipped; they do not fail
 * the load. Fails (logged, clearly worded, negative errno) only when
 * the directory itself cannot be read: missing, not a directory, more
 * than RUNBOOK_MAX_FILES *.md files.
 */
int runbooks_load(const char *dir, struct runbook_set **out);

/*
 * The set a recorded blob (struct runbook_set.blob) describes: each
 * file parsed again as runbooks_load parsed it, so that a replay, or a
 * restart, decides with the very runbooks the live step had. -EINVAL
 * when the blob is malformed (a truncated entry); a file that no
 * longer parses (a newer parser) is skipped as the loader would.
 */
int runbooks_from_blob(const void *blob, size_t len, struct runbook_set **out);

/* An empty set (no directory configured). */
struct runbook_set *runbooks_empty(void);

/* Another reference to s; any thread. */
struct runbook_set *runbook_set_ref(struct runbook_set *s);
/* Drop one reference; the last frees the set. NULL: no-op. */
void runbook_set_unref(struct runbook_set *s);

/*
 * Parse one runbook file's bytes (len, not NUL-terminated) into rb,
 * named path in messages; default_id is the file name less ".md" (NULL
 * if it cannot be an id). 0, or -EINVAL with the first problem in err
 * ("PATH:LINE: why") and nothing left allocated in rb. Every problem
 * is also logged. The seam for tests and the fuzzer.
 */
int runbook_parse(const char *path, const char *default_id, const char *data,
                  size_t len, struct runbook *rb, char *err, size_t errlen);
void runbook_free(struct runbook *rb);

/*
 * Is t a valid parameter template? Literal text, and placeholders
 * {host}, {field.NAME}, {label.NAME} (NAME: [A-Za-z0-9_.-]{1,64}); "{{"
 * and "}}" are a literal brace. 0, or -EINVAL with why in err.
 */
int runbook_template_check(const char *t, char *err, size_t errlen);

/* What is known of an incident when it is matched. All borrowed. */
struct runbook_subject {
    const char *cls;          /* fingerprint class (rule or check name) */
    const char *host;         /* the incident's host */
    int severity;             /* enum tc_severity */
    const char *problem_rule; /* rule of its problem; NULL = none */
    const struct runbook_kv *labels; /* of its (latest) event */
    size_t nlabels;
    const struct runbook_kv *fields; /* captured fields of that event */
    size_t nfields;
};

/* How one runbook fared against a subject. */
struct runbook_check {
    const struct runbook *rb; /* borrowed from the set */
    int matched;
    unsigned nconds;           /* conditions the runbook states */
    unsigned npass;            /* of those, how many hold */
    char why[RUNBOOK_WHY_MAX]; /* matched: what held; else the first
                                  condition that failed (raw text:
                                  escape to print) */
};

struct runbook_verdict {
    const struct runbook *best;    /* the runbook that applies, or NULL */
    const struct runbook *nearest; /* the one that came closest without
                                      matching (most conditions held,
                                      then priority, then id), or NULL */
    struct runbook_check *checks;  /* caller's array of cap entries, or
                                      NULL; filled in set order */
    size_t cap;
    size_t nchecks;                    /* filled: min(cap, set->n) */
    char nearest_why[RUNBOOK_WHY_MAX]; /* why nearest does not match */
};

/*
 * Match s against every runbook of set. out->checks and out->cap are
 * the caller's (0 and NULL when only the best matters, as in the
 * engine step); the rest is written. Returns the number of runbooks
 * that match. Pure.
 */
size_t runbook_match(const struct runbook_set *set,
                     const struct runbook_subject *s,
                     struct runbook_verdict *out);

/*
 * Fill template t from s into out (cap bytes, NUL-terminated). 0;
 * -ENOENT with why in err when a field or label it names is absent;
 * -ENOBUFS when out is too small; -EINVAL on a bad template. Pure.
 */
int runbook_expand(const char *t, const struct runbook_subject *s, char *out,
                   size_t cap, char *err, size_t errlen);

/* "class [a, b]; labels service=web; severity [error]" for listings. */
void runbook_match_summary(const struct runbook *rb, char *out, size_t cap);

#endif
