/*
 * hint_params: the stored params JSON back into HINT pairs; the rules
 * are in hint_params.h.
 */
#include "pipeline/hint_params.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "util.h"

/* The parser's position in json[0..len). */
struct pp {
    const unsigned char *p, *end;
    const char *why; /* the reason of the first refusal */
};

static int
refuse(struct pp *s, int err, const char *why)
{
    s->why = why;
    return err;
}

static void
skip_ws(struct pp *s)
{
    while (s->p < s->end &&
           (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r'))
        s->p++;
}

static int
hex4(const unsigned char *p, const unsigned char *end, uint32_t *v)
{
    *v = 0;
    if (end - p < 4)
        return -1;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];

        *v <<= 4;
        if (c >= '0' && c <= '9')
            *v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            *v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            *v |= (uint32_t)(c - 'A' + 10);
        else
            return -1;
    }
    return 0;
}

/* Append code point c (valid, not a surrogate, not 0) as UTF-8. */
static size_t
utf8_put(unsigned char *o, uint32_t c)
{
    if (c < 0x80) {
        o[0] = (unsigned char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (unsigned char)(0xC0 | c >> 6);
        o[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | c >> 12);
        o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | c >> 18);
    o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/*
 * The \u escape at s->p (past the 'u'): one code point, a surrogate
 * pair joined. 0 with *c, or a refusal.
 */
static int
unicode_escape(struct pp *s, uint32_t *c)
{
    uint32_t lo;

    if (hex4(s->p, s->end, c) < 0)
        return refuse(s, -EINVAL, "bad \\u escape");
    s->p += 4;
    if (*c >= 0xDC00 && *c < 0xE000)
        return refuse(s, -EINVAL, "lone surrogate in a \\u escape");
    if (*c >= 0xD800 && *c < 0xDC00) {
        if (s->end - s->p < 6 || s->p[0] != '\\' || s->p[1] != 'u' ||
            hex4(s->p + 2, s->end, &lo) < 0 || lo < 0xDC00 || lo >= 0xE000)
            return refuse(s, -EINVAL, "lone surrogate in a \\u escape");
        *c = 0x10000 + ((*c - 0xD800) << 10) + (lo - 0xDC00);
        s->p += 6;
    }
    if (*c == 0)
        return refuse(s, -EINVAL, "NUL in a string");
    return 0;
}

/*
 * The string at s->p (at its quote) decoded into a new C string *out,
 * at most max bytes (decoded). 0, or a refusal.
 */
static int
string(struct pp *s, size_t max, char **out)
{
    /* Room for the limit and one more character. */
    unsigned char buf[TC_HINT_MAX_PARAM_VAL + 8];
    size_t n = 0;

    if (s->p >= s->end || *s->p != '"')
        return refuse(s, -EINVAL, "a key or value is not a string");
    s->p++;
    for (;;) {
        unsigned char c;
        size_t k;

        if (s->p >= s->end)
            return refuse(s, -EINVAL, "unterminated string");
        if (n > max)
            return refuse(s, -EMSGSIZE,
                          max == TC_HINT_MAX_PARAM_KEY ? "a key is too long"
                                                       : "a value is too long");
        c = *s->p;
        if (c == '"')
            break;
        if (c < 0x20)
            return refuse(s, -EINVAL, "control byte in a string");
        if (c >= 0x80) {
            if ((k = tc_utf8_len(s->p, (size_t)(s->end - s->p))) == 0)
                return refuse(s, -EINVAL, "invalid UTF-8 in a string");
            memcpy(buf + n, s->p, k);
            n += k;
            s->p += k;
            continue;
        }
        s->p++;
        if (c != '\\') {
            buf[n++] = c;
            continue;
        }
        if (s->p >= s->end)
            return refuse(s, -EINVAL, "unterminated string");
        c = *s->p++;
        switch (c) {
        case '"':
        case '\\':
        case '/':
            buf[n++] = c;
            break;
        case 'b':
            buf[n++] = '\b';
            break;
        case 'f':
            buf[n++] = '\f';
            break;
        case 'n':
            buf[n++] = '\n';
            break;
        case 'r':
            buf[n++] = '\r';
            break;
        case 't':
            buf[n++] = '\t';
            break;
        case 'u': {
            uint32_t cp;
            int rc;

            if ((rc = unicode_escape(s, &cp)) < 0)
                return rc;
            n += utf8_put(buf + n, cp);
            break;
        }
        default:
            return refuse(s, -EINVAL, "bad escape in a string");
        }
    }
    if (n > max)
        return refuse(s, -EMSGSIZE,
                      max == TC_HINT_MAX_PARAM_KEY ? "a key is too long"
                                                   : "a value is too long");
    s->p++; /* the closing quote */
    *out = tc_xmalloc(n + 1);
    memcpy(*out, buf, n);
    (*out)[n] = '\0';
    return 0;
}

/* One "key":"value" pair at s->p into out. 0, or a refusal. */
static int
pair(struct pp *s, struct hint_params *out)
{
    char *k = NULL, *v = NULL;
    int rc;

    if ((rc = string(s, TC_HINT_MAX_PARAM_KEY, &k)) < 0)
        return rc;
    if (k[0] == '\0') {
        rc = refuse(s, -EINVAL, "an empty key");
        goto bad;
    }
    for (uint32_t i = 0; i < out->n; i++)
        if (strcmp(out->strs[2 * i], k) == 0) {
            rc = refuse(s, -EINVAL, "a key given twice");
            goto bad;
        }
    skip_ws(s);
    if (s->p >= s->end || *s->p != ':') {
        rc = refuse(s, -EINVAL, "':' expected after a key");
        goto bad;
    }
    s->p++;
    skip_ws(s);
    if ((rc = string(s, TC_HINT_MAX_PARAM_VAL, &v)) < 0)
        goto bad;
    if (out->n == TC_HINT_MAX_PARAMS) {
        rc = refuse(s, -EMSGSIZE, "too many params");
        goto bad;
    }
    if (out->n == 0) {
        out->kv = tc_xcalloc(TC_HINT_MAX_PARAMS, sizeof(*out->kv));
        out->strs = tc_xcalloc(2 * TC_HINT_MAX_PARAMS, sizeof(*out->strs));
    }
    out->strs[2 * out->n] = k;
    out->strs[2 * out->n + 1] = v;
    out->kv[out->n].key = tc_str_c(k);
    out->kv[out->n].val = tc_str_c(v);
    out->n++;
    return 0;
bad:
    free(k);
    free(v);
    return rc;
}

int
hint_params_parse(const char *json, size_t len, struct hint_params *out,
                  const char **why)
{
    struct pp s = {.why = NULL};
    int rc;

    memset(out, 0, sizeof(*out));
    if (json == NULL) {
        *why = "no params";
        return -EINVAL;
    }
    s.p = (const unsigned char *)json;
    s.end = s.p + len;
    skip_ws(&s);
    if (s.p >= s.end || *s.p != '{') {
        rc = refuse(&s, -EINVAL, "not a JSON object");
        goto bad;
    }
    s.p++;
    skip_ws(&s);
    if (s.p < s.end && *s.p == '}')
        goto close;
    for (;;) {
        if ((rc = pair(&s, out)) < 0)
            goto bad;
        skip_ws(&s);
        if (s.p < s.end && *s.p == ',') {
            s.p++;
            skip_ws(&s);
            continue;
        }
        break;
    }
    if (s.p >= s.end || *s.p != '}') {
        rc = refuse(&s, -EINVAL, "',' or '}' expected after a value");
        goto bad;
    }
close:
    s.p++;
    skip_ws(&s);
    if (s.p != s.end) {
        rc = refuse(&s, -EINVAL, "bytes after the object");
        goto bad;
    }
    return 0;
bad:
    hint_params_free(out);
    *why = s.why;
    return rc;
}

void
hint_params_free(struct hint_params *p)
{
    for (uint32_t i = 0; i < 2 * p->n; i++)
        free(p->strs[i]);
    free(p->strs);
    free(p->kv);
    memset(p, 0, sizeof(*p));
}
