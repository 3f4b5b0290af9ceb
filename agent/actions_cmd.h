/*
 * actions_cmd: `tocsin-agent actions list|test|run` (the client side)
 * and the agent's side of `run`, which arrives over the status socket.
 *
 * Why the running agent runs the action, not the CLI
 * (docs/internals/agent.md "Actions"): the spool, where the result
 * event must go, is locked by the running agent (spool.lock), "one run
 * at a time per action" needs one place that knows what runs, and the
 * status socket is already a local channel that only the agent's user
 * and root can open (mode 0600, docs/security.md).
 *
 * Request line on the socket: "action-run NAME KEY=VALUE ...", each of
 * NAME, KEY and VALUE %-encoded (every byte but [A-Za-z0-9._/-] as
 * %XX), so values with blanks, newlines or '=' stay one token. The
 * answer is text: "refused: REASON" or how the run ended and its
 * output tail, escaped for a terminal.
 */
#ifndef AGENT_ACTIONS_CMD_H
#define AGENT_ACTIONS_CMD_H

#include <stdint.h>

#include "action_run.h"
#include "config.h"
#include "hints_store.h"
#include "spool.h"
#include "status.h"

/* What the agent side needs; owned by main, fields borrowed. */
struct actions_agent {
    struct agent_config *const *cfg; /* the running configuration */
    const char *host;                /* agent name, for the events */
    struct action_runner *runner;
    struct spool *spool;
    struct hints_store *hints;  /* NULL: no hint store, no hints run */
    void (*spooled)(void *arg); /* an event was spooled: kick the sender */
    void *arg;
};

/* status_command_fn for the agent's status socket. */
void actions_cmd_handle(void *arg, struct status *s, uint64_t id,
                        const char *line);

/*
 * Start an action for a hint (or an operator: hint 0) and spool its
 * action_result event when it ends; reply(rarg, text) gets the outcome
 * (may be NULL). 0, or a negative errno with the reason in err (also
 * logged).
 */
int actions_cmd_start(struct actions_agent *aa, const char *name,
                      const struct tc_conf_kv *params, size_t n, uint64_t hint,
                      const char *incident,
                      void (*reply)(void *rarg, const char *text), void *rarg,
                      char *err, size_t errlen);

/*
 * Run the action of stored hint id. operator 1: asked for by a person
 * (tocsin-agent hints run ID), 0: the hint just arrived and runs only if
 * its action is allowlisted with auto: true (else nothing happens, the
 * hint waits for a person). The hint's state goes to "running" (before
 * the process starts), then "done" (exit 0), "failed" or "refused".
 * 0, 1 (operator 0: not an auto action, nothing done) or a negative
 * errno with the reason in err.
 */
int actions_cmd_hint_run(struct actions_agent *aa, uint64_t id, int operator,
                         void (*reply)(void *rarg, const char *text),
                         void *rarg, char *err, size_t errlen);
/* sender_set_hint_cb callback: actions_cmd_hint_run(arg, id, 0, ...). */
void actions_cmd_hint_stored(void *arg, uint64_t id);
/*
 * At start-up: hints left "running" by a crash are marked "failed"
 * (whether their action ran is unknown, and running it again could do
 * it twice); "new" hints with an auto action (stored, then the agent
 * died before it started) are run now.
 */
void actions_cmd_resume(struct actions_agent *aa);

/* tocsin-agent hints run ID [-c FILE]; argv[0] is "hints". */
int actions_hint_main(int argc, char **argv, const char *default_config);

/* tocsin-agent actions ...; argv[0] is "actions". Exit code. */
int actions_main(int argc, char **argv, const char *default_config);

#endif
