/*
 * hintforge: write one HINT frame to stdout, for tests.
 *
 *   hintforge --agent NAME --id N [--key PRIVATE.pem] [--incident S]
 *             [--problem N] [--source S] [--title S] [--text S]
 *             [--text-size N] [--action S] [--param KEY=VAL]...
 *             [--issued NS]
 *
 * Signed with --key (common/hintsig.c, as the collector will sign),
 * unsigned without it. --text-size N makes the text N bytes of 'x', to
 * go over the limits: a hint over them cannot be signed, so it gets 64
 * zero bytes as its signature (the agent must refuse it before looking
 * at the signature anyway). Exit 0, 1 on error, 2 on usage.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "hintsig.h"
#include "wire.h"

static void
usage(void)
{
    fprintf(stderr, "usage: hintforge --agent NAME --id N [--key FILE] "
                    "[--incident S] [--problem N] [--source S] [--title S] "
                    "[--text S] [--text-size N] [--action S] [--param K=V]... "
                    "[--issued NS]\n");
    exit(2);
}

static unsigned long long
num(const char *s)
{
    char *end;
    unsigned long long v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s || *end != '\0')
        usage();
    return v;
}

int
main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"agent", required_argument, NULL, 'a'},
        {"id", required_argument, NULL, 'i'},
        {"key", required_argument, NULL, 'k'},
        {"incident", required_argument, NULL, 'n'},
        {"problem", required_argument, NULL, 'p'},
        {"source", required_argument, NULL, 's'},
        {"title", required_argument, NULL, 't'},
        {"text", required_argument, NULL, 'x'},
        {"text-size", required_argument, NULL, 'X'},
        {"action", required_argument, NULL, 'A'},
        {"param", required_argument, NULL, 'P'},
        {"issued", required_argument, NULL, 'I'},
        {NULL, 0, NULL, 0},
    };
    struct tc_kv params[64];
    struct tc_hint h;
    struct tc_hintkey *key = NULL;
    uint8_t sig[TC_HINT_SIG_LEN];
    const char *keypath = NULL;
    char *text = NULL, err[512];
    struct tc_buf out;
    int ch, rc, have_agent = 0, have_id = 0;

    memset(&h, 0, sizeof(h));
    h.incident = tc_str_c("1");
    h.source = tc_str_c("runbook:test");
    h.title = tc_str_c("a test hint");
    h.text = tc_str_c("Do the thing.");
    h.params = params;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'a':
            h.agent = tc_str_c(optarg);
            have_agent = 1;
            break;
        case 'i':
            h.id = num(optarg);
            have_id = 1;
            break;
        case 'k':
            keypath = optarg;
            break;
        case 'n':
            h.incident = tc_str_c(optarg);
            break;
        case 'p':
            h.problem = num(optarg);
            break;
        case 's':
            h.source = tc_str_c(optarg);
            break;
        case 't':
            h.title = tc_str_c(optarg);
            break;
        case 'x':
            h.text = tc_str_c(optarg);
            break;
        case 'X': {
            size_t n = (size_t)num(optarg);
            free(text);
            text = malloc(n + 1);
            if (text == NULL)
                return 1;
            memset(text, 'x', n);
            text[n] = '\0';
            h.text = tc_str_c(text);
            break;
        }
        case 'A':
            h.action = tc_str_c(optarg);
            break;
        case 'P': {
            char *eq = strchr(optarg, '=');
            if (eq == NULL || h.nparams >= 64)
                usage();
            params[h.nparams].key.ptr = optarg;
            params[h.nparams].key.len = (uint32_t)(eq - optarg);
            params[h.nparams].val = tc_str_c(eq + 1);
            h.nparams++;
            break;
        }
        case 'I':
            h.issued = (int64_t)num(optarg);
            break;
        default:
            usage();
        }
    }
    if (!have_agent || !have_id || optind != argc)
        usage();
    if (keypath != NULL) {
        if (tc_hintkey_load_private(keypath, &key, err, sizeof(err)) < 0) {
            fprintf(stderr, "hintforge: %s\n", err);
            return 1;
        }
        if ((rc = tc_hintsig_sign(key, &h, sig)) == -EMSGSIZE ||
            rc == -EBADMSG) {
            memset(sig, 0, sizeof(sig));
        } else if (rc < 0) {
            fprintf(stderr, "hintforge: cannot sign: %s\n", strerror(-rc));
            return 1;
        }
        h.sig.ptr = (const char *)sig;
        h.sig.len = sizeof(sig);
    }
    tc_buf_init(&out, TC_WIRE_MAX_FRAME + TC_WIRE_HDR);
    if ((rc = tc_wire_encode_hint(&out, &h)) < 0) {
        fprintf(stderr, "hintforge: cannot encode: %s\n", strerror(-rc));
        return 1;
    }
    if (fwrite(tc_buf_head(&out), 1, tc_buf_size(&out), stdout) !=
        tc_buf_size(&out))
        return 1;
    tc_buf_close(&out);
    tc_hintkey_free(key);
    free(text);
    return 0;
}
