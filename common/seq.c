/*
 * seq: bounds of agents' sequence numbers; see seq.h.
 */
#include "seq.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>

int
tc_seq_check(uint64_t mark, uint64_t last, char *why, size_t whylen)
{
    if (last <= mark)
        return 0;
    if (last > TC_SEQ_MAX) {
        snprintf(why, whylen,
                 "seq %" PRIu64 " is beyond the highest seq %" PRIu64, last,
                 TC_SEQ_MAX);
        return -ERANGE;
    }
    if (last - mark > TC_SEQ_JUMP_MAX) {
        snprintf(why, whylen,
                 "seq %" PRIu64 " jumps %" PRIu64 " past the mark %" PRIu64
                 " (at most %" PRIu64 ")",
                 last, last - mark, mark, TC_SEQ_JUMP_MAX);
        return -ERANGE;
    }
    return 0;
}

int
tc_seq_after(uint64_t mark, uint64_t n, uint64_t *first)
{
    /* mark + n + 1 <= TC_SEQ_MAX, written so that nothing can wrap. */
    if (mark >= TC_SEQ_MAX || n > TC_SEQ_MAX - 1 - mark)
        return -ERANGE;
    *first = mark + 1;
    return 0;
}
