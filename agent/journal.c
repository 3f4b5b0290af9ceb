/*
 * journal: journald input over sd-journal; see journal.h.
 *
 * Loop integration: sd_journal_get_fd gives an inotify descriptor that
 * a uv_poll watches; when it fires, sd_journal_process says whether
 * anything was appended or the files changed. A timer reads as well,
 * every JOURNAL_POLL_MS, because sd-journal documents that some changes
 * (files on network storage, rotation races) are seen only by polling.
 * A batch that filled up continues on the next loop iteration (a zero
 * timer), so a large backlog never blocks the loop.
 *
 * Lifetimes: sd_journal_get_data's pointers are valid only until the
 * next sd-journal call on the entry, but emit needs the line until the
 * commit. Each batch therefore copies what it hands to emit into a
 * fixed arena, and ends when the arena or the entry count is full.
 *
 * Which journal: the local system journal or, with namespace set, the
 * journal of that namespace (sd_journal_open_namespace: the files of
 * systemd-journald@NAMESPACE in .../MACHINE_ID.NAMESPACE, and nothing
 * of the default namespace).
 *
 * For tests only: when TOCSIN_JOURNAL_DIRECTORY is set in the
 * environment, the journal files of that directory are read instead
 * (sd_journal_open_directory; namespace is then ignored), so that a
 * test can build its own journal where journald does not run.
 */
#include "journal.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <systemd/sd-journal.h>

#include "log.h"
#include "util.h"

#define JOURNAL_POLL_MS 1000
#define JOURNAL_BATCH 512           /* entries per batch at most */
#define JOURNAL_ARENA (1u << 20)    /* bytes of copied strings a batch */
#define JOURNAL_MSG_MAX (64u << 10) /* MESSAGE bytes kept (wire limit) */
#define JOURNAL_FIELD_MAX 256       /* unit, pid, identifier: bytes */

struct journal {
    uv_loop_t *loop;                /* borrowed */
    const struct agent_journal *jc; /* borrowed */
    struct rules *rules;            /* borrowed; NULL: ship everything */
    struct emit *emit;              /* borrowed */
    sd_journal *sj;                 /* owned; NULL if not open */
    char *cursor_key;               /* owned: "journal:NAME" */
    char *cursor;                   /* owned: last entry read, or NULL */
    uv_poll_t poll;                 /* on sd_journal_get_fd */
    uv_timer_t timer;               /* poll fallback and continuation */
    int poll_on;                    /* poll initialised */
    int timer_on;                   /* timer initialised */
    int closing;                    /* handles left to close */
    void (*stop_cb)(void *arg);
    void *stop_arg;
    char *arena;      /* owned: JOURNAL_ARENA bytes */
    size_t arena_len; /* bytes used in this batch */
    struct emit_batch batch;
    struct journal_stats stats;
    int warned;    /* read error logged */
    int waiting;   /* open, but no journal files yet: reopened each tick */
    int from_head; /* without a stored cursor, start at the head (the
                      files appeared after the input started) */
};

enum tc_severity
journal_severity(int priority)
{
    if (priority <= 2)
        return TC_SEV_CRITICAL; /* emerg, alert, crit */
    if (priority == 3)
        return TC_SEV_ERROR;
    if (priority == 4)
        return TC_SEV_WARNING;
    return TC_SEV_INFO; /* notice, info, debug */
}

struct journal *
journal_new(uv_loop_t *loop, const struct agent_journal *jc,
            struct rules *rules, struct emit *e)
{
    struct journal *j = tc_xcalloc(1, sizeof(*j));

    j->loop = loop;
    j->jc = jc;
    j->rules = rules != NULL && rules_count(rules) > 0 ? rules : NULL;
    j->emit = e;
    j->cursor_key = tc_xasprintf("journal:%s", jc->name);
    j->arena = tc_xmalloc(JOURNAL_ARENA);
    emit_batch_init(&j->batch);
    return j;
}

/* Copy n bytes into the arena; NULL when it is full. */
static const char *
journal_keep(struct journal *j, const char *p, size_t n)
{
    char *q;

    if (j->arena_len + n > JOURNAL_ARENA)
        return NULL;
    q = j->arena + j->arena_len;
    memcpy(q, p, n);
    j->arena_len += n;
    return q;
}

/* journal_keep, NUL-terminated. */
static const char *
journal_keep_str(struct journal *j, const char *p, size_t n)
{
    const char *q;

    if (j->arena_len + n + 1 > JOURNAL_ARENA)
        return NULL;
    q = journal_keep(j, p, n);
    (void)journal_keep(j, "", 1);
    return q;
}

/* FIELD=value of the current entry: value and length, or -ENOENT. */
static int
journal_field(struct journal *j, const char *field, const char **val,
              size_t *len)
{
    const void *d;
    size_t n, fl = strlen(field);
    int rc;

    if ((rc = sd_journal_get_data(j->sj, field, &d, &n)) < 0)
        return rc;
    if (n < fl + 1)
        return -EBADMSG;
    *val = (const char *)d + fl + 1;
    *len = n - fl - 1;
    return 0;
}

static int
journal_add_matches(struct journal *j)
{
    const struct agent_journal *jc = j->jc;
    char m[512];
    int rc;

    /* Matches on the same field are ORed, different fields ANDed. */
    for (size_t i = 0; i < jc->nunits; i++) {
        snprintf(m, sizeof(m), "_SYSTEMD_UNIT=%s", jc->units[i]);
        if ((rc = sd_journal_add_match(j->sj, m, 0)) < 0)
            return rc;
    }
    /* At debug (7) every entry is wanted, including those without a
     * PRIORITY field, which a match would leave out. */
    if (jc->priority < 7)
        for (uint32_t p = 0; p <= jc->priority; p++) {
            snprintf(m, sizeof(m), "PRIORITY=%" PRIu32, p);
            if ((rc = sd_journal_add_match(j->sj, m, 0)) < 0)
                return rc;
        }
    return 0;
}

/* Position the journal before the first entry to read. */
static int
journal_seek(struct journal *j)
{
    char *stored = NULL;
    int rc;

    free(j->cursor);
    j->cursor = NULL;
    rc = emit_cursor_get(j->emit, j->cursor_key, &stored);
    if (rc < 0 && rc != -ENOENT)
        return rc;
    if (stored != NULL) {
        if ((rc = sd_journal_seek_cursor(j->sj, stored)) >= 0) {
            /* Seeking to a cursor lands on (or next to) its entry; that
             * entry was committed, so step over it if it is still
             * there. If it is not, the entry landed on is the next to
             * read: step back onto the match before it, or to the head
             * if there is none (a previous() that finds nothing leaves
             * the position where it was, and that entry would be
             * skipped). */
            if (sd_journal_next(j->sj) > 0 &&
                sd_journal_test_cursor(j->sj, stored) <= 0) {
                log_warnx("journal %s: the entry at the stored cursor is "
                          "gone (its file was rotated out or vacuumed) or "
                          "no longer matches; resuming at the next entry "
                          "that matches",
                          j->jc->name);
                if (sd_journal_previous(j->sj) <= 0 &&
                    (rc = sd_journal_seek_head(j->sj)) < 0) {
                    free(stored);
                    return rc;
                }
            }
            log_info("journal %s: resuming after the stored cursor",
                     j->jc->name);
            j->cursor = stored;
            return 0;
        }
        log_warnx("journal %s: stored cursor is not usable (%s); "
                  "starting at the %s",
                  j->jc->name, strerror(-rc),
                  j->jc->start_at == AGENT_START_END && !j->from_head
                      ? "end"
                      : "beginning");
        free(stored);
    }
    if (j->jc->start_at == AGENT_START_END && !j->from_head) {
        if ((rc = sd_journal_seek_tail(j->sj)) < 0)
            return rc;
        /* seek_tail points past the end; previous makes the position
         * real, so next() returns what is appended after now. */
        sd_journal_previous(j->sj);
    } else if ((rc = sd_journal_seek_head(j->sj)) < 0) {
        return rc;
    }
    return 0;
}

/*
 * Hand the current entry to emit. Returns 1 if handled, 0 if the batch
 * is out of arena room (the entry is left for the next batch).
 */
static int
journal_entry(struct journal *j)
{
    struct emit_source src;
    struct rules_hit hit;
    struct tc_kv extra[3];
    const char *msg = NULL, *v, *line;
    size_t msglen = 0, n, mark = j->arena_len;
    uint64_t usec = 0;
    uint32_t nextra = 0;
    int prio = 6;
    static const char *const names[3][2] = {
        {"_SYSTEMD_UNIT", "unit"},
        {"_PID", "pid"},
        {"SYSLOG_IDENTIFIER", "identifier"},
    };

    if (journal_field(j, "MESSAGE", &msg, &msglen) < 0) {
        msg = "";
        msglen = 0;
    }
    if (msglen > JOURNAL_MSG_MAX)
        msglen = JOURNAL_MSG_MAX;
    if (journal_field(j, "PRIORITY", &v, &n) == 0 && n == 1 && v[0] >= '0' &&
        v[0] <= '7')
        prio = v[0] - '0';
    j->stats.entries++;
    memset(&hit, 0, sizeof(hit));
    if (j->rules != NULL) {
        if (rules_match(j->rules, msg, msglen, &hit) < 0)
            return 1;
    } else {
        hit.sev = journal_severity(prio);
    }
    if ((line = journal_keep(j, msg, msglen)) == NULL && msglen > 0)
        return 0;
    for (int i = 0; i < 3; i++) {
        const char *kept;

        if (journal_field(j, names[i][0], &v, &n) < 0)
            continue;
        if (n > JOURNAL_FIELD_MAX)
            n = JOURNAL_FIELD_MAX;
        if ((kept = journal_keep(j, v, n)) == NULL && n > 0) {
            j->arena_len = mark;
            return 0;
        }
        extra[nextra].key = tc_str_c(names[i][1]);
        extra[nextra].val.ptr = kept;
        extra[nextra].val.len = (uint32_t)n;
        nextra++;
    }
    if (j->rules == NULL) {
        /* Without rules the entry's rule is what names its origin:
         * the unit, else the syslog identifier, else the input. */
        const char *rule = j->jc->name;
        const struct tc_kv *o = NULL;

        for (uint32_t i = 0; i < nextra; i++)
            if (o == NULL && strcmp(extra[i].key.ptr, "pid") != 0)
                o = &extra[i];
        if (o != NULL) {
            const char *r = journal_keep_str(j, o->val.ptr, o->val.len);
            if (r == NULL) {
                j->arena_len = mark;
                return 0;
            }
            rule = r;
        }
        hit.rule = rule;
    }
    memset(&src, 0, sizeof(src));
    src.kind = "log";
    src.source = j->jc->name;
    src.labels = j->jc->labels;
    src.nlabels = j->jc->nlabels;
    src.extra = extra;
    src.nextra = nextra;
    if (sd_journal_get_realtime_usec(j->sj, &usec) >= 0 && usec > 0)
        src.event_ts = (int64_t)usec * 1000;
    j->stats.matched++;
    emit_match(j->emit, &j->batch, &src, &hit, line ? line : "", msglen,
               tc_now_ns());
    return 1;
}

static void journal_timer_cb(uv_timer_t *h);
static void journal_wait_files(struct journal *j);

/* Read one batch and commit it. Returns 1 if more may be waiting. */
static int
journal_read(struct journal *j)
{
    char *cursor = NULL;
    int n = 0, more = 0, rc;

    j->arena_len = 0;
    while (n < JOURNAL_BATCH) {
        if ((rc = sd_journal_next(j->sj)) <= 0) {
            if (rc < 0 && !j->warned) {
                log_warnx("journal %s: read: %s", j->jc->name, strerror(-rc));
                j->warned = 1;
            }
            break;
        }
        if (journal_entry(j) == 0) {
            /* Out of room: read this entry again next batch. */
            sd_journal_previous(j->sj);
            j->stats.entries--;
            more = 1;
            break;
        }
        free(cursor);
        cursor = NULL;
        if (sd_journal_get_cursor(j->sj, &cursor) < 0)
            cursor = NULL;
        n++;
    }
    if (n == JOURNAL_BATCH)
        more = 1;
    if (n == 0)
        return 0;
    rc = emit_commit(j->emit, &j->batch, NULL, NULL,
                     cursor ? j->cursor_key : NULL, cursor);
    if (rc < 0) {
        /* Nothing was committed: go back to the last committed cursor
         * and read the same entries again later. */
        log_warnx("journal %s: commit: %s; retrying", j->jc->name,
                  strerror(-rc));
        free(cursor);
        if ((rc = journal_seek(j)) < 0)
            log_warnx("journal %s: cannot seek back: %s", j->jc->name,
                      strerror(-rc));
        return 0;
    }
    j->stats.batches++;
    if (cursor != NULL) {
        free(j->cursor);
        j->cursor = cursor;
    }
    return more;
}

static void
journal_pump(struct journal *j)
{
    if (j->sj == NULL || j->stop_cb != NULL)
        return;
    if (journal_read(j))
        uv_timer_start(&j->timer, journal_timer_cb, 0, JOURNAL_POLL_MS);
}

static void
journal_timer_cb(uv_timer_t *h)
{
    struct journal *j = h->data;

    if (j->waiting) {
        if (j->stop_cb == NULL)
            journal_wait_files(j);
        return;
    }
    journal_pump(j);
}

static void
journal_poll_cb(uv_poll_t *h, int status, int events)
{
    struct journal *j = h->data;

    /* sd_journal_process must run after every wakeup so that the
     * descriptor is drained, whatever it reports. */
    if (sd_journal_process(j->sj) < 0 && !j->warned) {
        log_warnx("journal %s: cannot process changes", j->jc->name);
        j->warned = 1;
    }
    journal_pump(j);
}

/* Open the journal this input reads (j->sj); logs why not. */
static int
journal_open(struct journal *j, int quiet)
{
    const char *dir = getenv("TOCSIN_JOURNAL_DIRECTORY");
    const char *ns = j->jc->namespace;
    int rc;

    if (dir != NULL && *dir != '\0')
        rc = sd_journal_open_directory(&j->sj, dir, 0);
    else if (ns != NULL)
        rc = sd_journal_open_namespace(&j->sj, ns, SD_JOURNAL_LOCAL_ONLY);
    else
        rc = sd_journal_open(&j->sj, SD_JOURNAL_LOCAL_ONLY);
    if (rc < 0) {
        if (!quiet)
            log_warnx("journal %s: cannot open the journal%s%s (%s): is "
                      "journald running? This input stays idle; the rest "
                      "of the agent runs",
                      j->jc->name, ns ? " of namespace " : "", ns ? ns : "",
                      strerror(-rc));
        j->sj = NULL;
    }
    return rc;
}

/* 1 if the open journal has at least one file. */
static int
journal_has_files(struct journal *j)
{
    uint64_t bytes = 0;

    return sd_journal_get_usage(j->sj, &bytes) < 0 || bytes > 0;
}

/* Matches and the start position; on error the journal is closed. */
static int
journal_prepare(struct journal *j)
{
    int rc;

    if ((rc = journal_add_matches(j)) < 0 || (rc = journal_seek(j)) < 0) {
        log_warnx("journal %s: %s", j->jc->name, strerror(-rc));
        sd_journal_close(j->sj);
        j->sj = NULL;
        j->stats.open = 0;
    }
    return rc;
}

/* Watch the journal's inotify descriptor; the timer alone without it. */
static void
journal_watch(struct journal *j)
{
    int fd = sd_journal_get_fd(j->sj);

    if (fd >= 0 && uv_poll_init(j->loop, &j->poll, fd) == 0) {
        j->poll.data = j;
        j->poll_on = 1;
        uv_poll_start(&j->poll, UV_READABLE, journal_poll_cb);
    } else {
        log_info("journal %s: no change notification; polling every %d ms",
                 j->jc->name, JOURNAL_POLL_MS);
    }
}

/*
 * While the journal has no files, open it again on every timer tick.
 * sd-journal notices a journal directory created after it was opened
 * only if its name is a plain machine ID: the MACHINE_ID.NAMESPACE
 * directory that systemd-journald@NAMESPACE creates when it first
 * logs, and any directory under a root (/run/log/journal) that did not
 * exist yet, are never picked up by an open journal.
 */
static void
journal_wait_files(struct journal *j)
{
    sd_journal_close(j->sj);
    j->sj = NULL;
    j->stats.open = journal_open(j, 1) == 0;
    if (j->sj == NULL)
        return; /* try again on the next tick */
    if (!journal_has_files(j))
        return;
    j->waiting = 0;
    j->stats.waiting = 0;
    log_info("journal %s: journal files appeared; reading them", j->jc->name);
    /* Everything in them was written after this input started waiting,
     * so without a stored cursor it is all new: read from the head,
     * whatever start_at says. */
    j->from_head = 1;
    if (journal_prepare(j) < 0)
        return;
    journal_watch(j);
    journal_pump(j);
}

int
journal_start(struct journal *j)
{
    const char *ns = j->jc->namespace;
    int rc;

    if (journal_open(j, 0) < 0)
        return 0;
    j->stats.open = 1;
    log_info("journal %s: reading%s%s (%zu units, priority <= %" PRIu32 ")",
             j->jc->name, ns ? " namespace " : "", ns ? ns : "", j->jc->nunits,
             j->jc->priority);
    if (journal_has_files(j)) {
        if ((rc = journal_prepare(j)) < 0)
            return rc == -ENOMEM ? rc : 0;
    } else {
        /* A namespace's files appear only once its journald has logged;
         * say so, since the input looks idle until then. */
        j->waiting = 1;
        j->stats.waiting = 1;
        if (ns != NULL)
            log_info("journal %s: no journal files of namespace %s yet (is "
                     "systemd-journald@%s running?); reading them when "
                     "they appear",
                     j->jc->name, ns, ns);
        else
            log_info("journal %s: no journal files yet; reading them when "
                     "they appear",
                     j->jc->name);
    }
    uv_timer_init(j->loop, &j->timer);
    j->timer.data = j;
    j->timer_on = 1;
    if (!j->waiting)
        journal_watch(j);
    uv_timer_start(&j->timer, journal_timer_cb, 0, JOURNAL_POLL_MS);
    return 0;
}

static void
journal_closed(uv_handle_t *h)
{
    struct journal *j = h->data;

    if (--j->closing == 0 && j->stop_cb != NULL)
        j->stop_cb(j->stop_arg);
}

void
journal_stop(struct journal *j, void (*cb)(void *arg), void *arg)
{
    j->stop_cb = cb;
    j->stop_arg = arg;
    if (j->poll_on) {
        j->closing++;
        uv_close((uv_handle_t *)&j->poll, journal_closed);
        j->poll_on = 0;
    }
    if (j->timer_on) {
        j->closing++;
        uv_close((uv_handle_t *)&j->timer, journal_closed);
        j->timer_on = 0;
    }
    if (j->closing == 0 && cb != NULL)
        cb(arg);
}

void
journal_free(struct journal *j)
{
    if (j == NULL)
        return;
    if (j->sj != NULL)
        sd_journal_close(j->sj);
    emit_batch_close(&j->batch);
    free(j->arena);
    free(j->cursor);
    free(j->cursor_key);
    free(j);
}

void
journal_get_stats(const struct journal *j, struct journal_stats *out)
{
    *out = j->stats;
}
