/*
 * conf: YAML configuration files, loaded into a small tree and applied
 * to a struct through a declarative schema table (Redis config table
 * style: key, type, target field, default, bounds, help on one row).
 *
 * tc_conf_load parses one file with libyaml into scalars, maps (ordered
 * key/value pairs) and sequences, each carrying its 1-based line. It
 * refuses what makes a config file ambiguous or dangerous: duplicate
 * keys, anchors and aliases (so an alias bomb cannot expand), more than
 * one document, non-scalar keys, nesting deeper than TC_CONF_MAX_DEPTH,
 * a file larger than TC_CONF_MAX_BYTES. Loading is linear in the size of
 * the file.
 *
 * tc_conf_apply walks the tree with a schema and writes typed values
 * into the caller's struct. Every problem is logged with log_warnx as
 * "FILE:LINE: message" and counted; the walk goes on so that one run
 * reports all errors, and the call then fails with -EINVAL. Strings the
 * walk stores are heap copies owned by the target struct; release them
 * with tc_conf_release and the same schema. docs/configuration.md shows
 * the value syntax every type accepts.
 */
#ifndef TC_CONF_H
#define TC_CONF_H

#include <stddef.h>
#include <stdint.h>

#include "log.h"

/* Maps and sequences nested deeper than this are refused. */
#define TC_CONF_MAX_DEPTH 32

/*
 * Configuration files larger than this are refused before parsing. Real
 * ones are a few KiB; the cap bounds the tree's memory (a node takes at
 * least two bytes of input) and the time of -n. Overridable at build
 * time for benchmarks (-DTC_CONF_MAX_BYTES=...).
 */
#ifndef TC_CONF_MAX_BYTES
#define TC_CONF_MAX_BYTES (1024 * 1024)
#endif

enum tc_conf_kind {
    TC_CONF_SCALAR = 0,
    TC_CONF_MAP = 1,
    TC_CONF_SEQ = 2,
};

struct tc_conf_pair;

struct tc_conf_node {
    enum tc_conf_kind kind;
    int line;                   /* 1-based line where the node starts */
    char *str;                  /* SCALAR: text, NUL-terminated; owned */
    int null;                   /* SCALAR: plain "", "~" or "null" */
    struct tc_conf_pair *pairs; /* MAP: npairs entries in file order */
    size_t npairs;
    struct tc_conf_node **items; /* SEQ: nitems entries; owned */
    size_t nitems;
};

struct tc_conf_pair {
    char *key;                /* owned */
    int line;                 /* 1-based line of the key */
    struct tc_conf_node *val; /* owned; never NULL */
};

struct tc_conf {
    char *file;                /* path as given, used in messages; owned */
    char *path;                /* absolute path of the file; owned */
    char *dir;                 /* absolute directory of the file; owned */
    struct tc_conf_node *root; /* a MAP; owned */
    int nerrors;               /* problems reported so far */
};

/*
 * Parse path. On success *out (OUT) holds a tree whose root is a map.
 * Syntax errors, an empty file and the refusals above are logged as
 * "FILE:LINE: ..." and return -EINVAL; a file over TC_CONF_MAX_BYTES is
 * logged with its size and the cap and returns -EFBIG; an unreadable
 * file returns its -errno. Nothing is left allocated on error.
 */
int tc_conf_load(const char *path, struct tc_conf **out);

/*
 * The same from len bytes at data, as if read from a file called name
 * (used in messages and to resolve relative paths, as path above). The
 * seam for the fuzzer and tests: no file, same checks, same cap.
 */
int tc_conf_load_mem(const char *name, const void *data, size_t len,
                     struct tc_conf **out);
void tc_conf_free(struct tc_conf *c);

/* Log "FILE:LINE: message" and count it in c->nerrors. */
void tc_conf_error(struct tc_conf *c, int line, const char *fmt, ...)
    TC_PRINTF(3, 4);

/*
 * The node at a dotted key path below map ("sender.backoff_max"), or
 * NULL if any step is missing or not a map. For post-walk checks that
 * need a line number.
 */
const struct tc_conf_node *tc_conf_find(const struct tc_conf_node *map,
                                        const char *dotted);

/*
 * For each of n names (NULL entries are skipped), the index of the first
 * earlier equal name, or SIZE_MAX if there is none, in first[i] (OUT, n
 * entries). Linear in n, for the checks that a list's names are unique.
 */
void tc_conf_find_dups(const char *const *names, size_t n, size_t *first);

/* "pki/ca.crt" joined to the file's directory; absolute paths kept. */
char *tc_conf_path(const struct tc_conf *c, const char *p);

/*
 * Value syntax, shared with anything else that takes sizes or
 * durations. Sizes: an integer with an optional unit, B, KB/MB/GB/TB
 * (powers of 1000) or KiB/MiB/GiB/TiB (powers of 1024); no unit means
 * bytes. Durations: an integer with a unit ms, s, m, h or d, stored in
 * milliseconds; only 0 may omit the unit. Both return 0 or -EINVAL
 * (also on overflow of uint64_t).
 */
int tc_conf_parse_size(const char *s, uint64_t *bytes);
int tc_conf_parse_duration(const char *s, uint64_t *ms);

enum tc_conf_type {
    TC_CONF_T_END = 0,  /* terminates a schema (key NULL) */
    TC_CONF_T_STRING,   /* char *, heap copy */
    TC_CONF_T_PATH,     /* char *, resolved by tc_conf_path */
    TC_CONF_T_HOSTPORT, /* char *, checked with tc_hostport_split */
    TC_CONF_T_SIZE,     /* uint32_t or uint64_t, bytes */
    TC_CONF_T_DURATION, /* uint32_t or uint64_t, milliseconds */
    TC_CONF_T_UINT,     /* uint32_t or uint64_t, decimal digits only */
    TC_CONF_T_BOOL,     /* int: true/false, yes/no, on/off */
    TC_CONF_T_ENUM,     /* int-sized enum, from .enums */
    TC_CONF_T_CUSTOM,   /* .parse fills the field; must not allocate */
    TC_CONF_T_MAP,      /* nested map, walked with .sub at base+offset;
                           .sub NULL: a free-form map left to .check */
    TC_CONF_T_SEQ,      /* sequence of maps into an array, see below */
    TC_CONF_T_STRLIST,  /* char ** + size_t count: a list of strings, or
                           one string for a list of one; the array has
                           a NULL after the last entry (argv-ready) */
    TC_CONF_T_STRMAP,   /* struct tc_conf_kv * + size_t count: a map of
                           free-form string keys to string values */
};

/* One entry of a TC_CONF_T_STRMAP (labels and the like); both owned. */
struct tc_conf_kv {
    char *key;
    char *val;
};

struct tc_conf_enum {
    const char *name; /* NULL terminates the table */
    int value;
};

struct tc_conf;
struct tc_conf_field;

/*
 * Runs after a MAP or SEQ field present in the file was walked, with the
 * node and the struct that holds the field (for cross-field checks such
 * as unique names); reports with tc_conf_error.
 */
typedef void (*tc_conf_check_fn)(struct tc_conf *c,
                                 const struct tc_conf_node *node, void *base);

/*
 * One schema row. offset/size locate the target in the struct the
 * schema is applied to (TC_CONF_AT fills both). def is the default in
 * the same syntax as the file and is parsed by the same code; NULL means
 * no default (pointers stay NULL, numbers 0). min/max bound sizes,
 * durations and uints in their stored unit, and the length of strings
 * in bytes (min 1: must not be empty); max 0 means only the field's
 * width bounds it.
 *
 * STRLIST and STRMAP fields store their array pointer at offset and the
 * element count (size_t) at count_offset, like SEQ.
 *
 * A SEQ field stores a pointer to an array of elem_size-byte elements at
 * offset and its length (size_t) at count_offset; each element is a map
 * walked with .sub, and line_offset (if has_line) locates an int in the
 * element that receives the item's line.
 */
struct tc_conf_field {
    const char *key;
    enum tc_conf_type type;
    size_t offset; /* bytes from the base of the target struct */
    size_t size;   /* bytes of the target field */
    const char *def;
    uint64_t min, max;
    int required;                           /* absence is an error */
    const struct tc_conf_field *sub;        /* MAP, SEQ */
    const struct tc_conf_enum *enums;       /* ENUM */
    int (*parse)(const char *s, void *dst); /* CUSTOM: 0 or -EINVAL */
    const char *expect;     /* CUSTOM: "one of a, b" for error messages */
    size_t elem_size;       /* SEQ: bytes per element */
    size_t count_offset;    /* SEQ: size_t element count */
    size_t line_offset;     /* SEQ: int line in each element */
    int has_line;           /* SEQ: line_offset is meaningful */
    tc_conf_check_fn check; /* MAP, SEQ: after the walk */
    int optional;           /* MAP: absent means the whole block is off:
                               its keys are not walked (no defaults, no
                               missing-key errors) */
    const char *help;       /* one line, for docs and -h */
};

#define TC_CONF_AT(type, member)                                               \
    .offset = offsetof(type, member), .size = sizeof(((type *)0)->member)

/*
 * Apply schema to the file's root map, writing into base. Logs every
 * problem and returns -EINVAL if there was any (including ones reported
 * earlier on c), else 0. On error base may be half filled: release it.
 */
int tc_conf_apply(struct tc_conf *c, const struct tc_conf_field *schema,
                  void *base);

/* Free what tc_conf_apply stored in base (strings, arrays); base stays. */
void tc_conf_release(const struct tc_conf_field *schema, void *base);

#endif
