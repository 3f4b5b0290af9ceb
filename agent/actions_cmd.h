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
#include "spool.h"
#include "status.h"

/* What the agent side needs; owned by main, fields borrowed. */
struct actions_agent {
    struct agent_config *const *cfg; /* the running configuration */
    const char *host;                /* agent name, for the events */
    struct action_runner *runner;
    struct spool *spool;
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

/* tocsin-agent actions ...; argv[0] is "actions". Exit code. */
int actions_main(int argc, char **argv, const char *default_config);

#endif
