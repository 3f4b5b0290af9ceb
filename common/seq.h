/*
 * seq: the bounds of an agent's sequence numbers (docs/protocol.md,
 * "Sequence numbers"), shared by the collector, which refuses a batch
 * outside them, and the agent, which never numbers outside them.
 *
 * Seqs are uint64 on the wire, but a seq that reaches the top of the
 * range leaves an agent nowhere to go: a fresh spool must number after
 * the collector's mark, and mark + 1 would wrap to 0. So:
 *  - TC_SEQ_MAX = 2^63 - 1 is the highest seq there is. It is also the
 *    largest value SQLite's INTEGER holds, where both ends store seqs.
 *    At a million events a second an agent reaches it in 292,000 years.
 *  - TC_SEQ_JUMP_MAX = 2^32: the most a batch may move an agent's mark
 *    (last seq of the batch minus the mark). A real agent numbers its
 *    events one by one and renumbers a fresh spool to start right after
 *    the mark it is told, so its batches move the mark by at most the
 *    batch's size (10,000 events), plus any seqs it skipped. 2^32 leaves
 *    room for four billion skipped seqs, far more than any spool holds,
 *    while a stolen key needs 2^31 accepted batches, each stored and
 *    visible, to push the mark from 0 to TC_SEQ_MAX.
 */
#ifndef TC_SEQ_H
#define TC_SEQ_H

#include <stddef.h>
#include <stdint.h>

#define TC_SEQ_MAX ((UINT64_C(1) << 63) - 1)
#define TC_SEQ_JUMP_MAX (UINT64_C(1) << 32)

/*
 * May a batch whose new events (those above mark) end at seq last
 * follow an agent whose mark is mark? 0 if so (last <= mark is a
 * replay: fine); else -ERANGE and a reason in why, naming both numbers.
 */
int tc_seq_check(uint64_t mark, uint64_t last, char *why, size_t whylen);

/*
 * The first seq for n events numbered right after mark (a fresh spool
 * told mark in WELCOME): mark + 1 in *first, 0 returned; or -ERANGE
 * unless the seqs mark + 1 .. mark + n and the next one after them,
 * mark + n + 1, are all at most TC_SEQ_MAX (an agent stores its next
 * seq too, in a signed 64-bit SQLite integer).
 */
int tc_seq_after(uint64_t mark, uint64_t n, uint64_t *first);

#endif
