/*
 * status: the agent's local status socket and its client.
 *
 * The daemon listens on a unix socket (agent_config.status_socket,
 * default STATE_DIR/agent.sock, mode 0600: only the agent's user and
 * root can read it). A client writes one request line, "json\n" or
 * "text\n"; the daemon answers with the document rendered by the
 * callback it was given and closes. Other lines go to the command
 * handler, if one was set (status_set_command: "action-run" and
 * "hint-run", see actions_cmd.h), which may answer later. Rendering
 * happens on the loop thread, so the callback may read every module's
 * state directly.
 *
 * `tocsin-agent status [--json] [-c FILE]` is the client
 * (status_query). It needs nothing but the socket path from the config.
 */
#ifndef AGENT_STATUS_H
#define AGENT_STATUS_H

#include <stdint.h>
#include <stdio.h>

#include <uv.h>

#include "buf.h"

/* Largest status document, bytes. */
#define STATUS_MAX (4u << 20)

struct status;

/* Append the document to out; json is 1 for JSON, 0 for text. */
typedef void (*status_render_fn)(void *arg, struct tc_buf *out, int json);

/*
 * Listen on path (a stale socket left by a crash is replaced; a socket
 * another agent still answers on is an error). 0 or negative errno.
 */
int status_start(uv_loop_t *loop, const char *path, status_render_fn render,
                 void *arg, struct status **out);
/*
 * Commands beyond "json" and "text" (tocsin-agent actions run): a
 * request line the socket does not know itself goes to fn(arg, s, id,
 * line), on the loop; the answer is given with status_reply(s, id,
 * ...), at once or later (the client waits up to an hour: an action
 * may run that long). Without a handler such lines are refused.
 */
typedef void (*status_command_fn)(void *arg, struct status *s, uint64_t id,
                                  const char *line);
void status_set_command(struct status *s, status_command_fn fn, void *arg);
/* Answer client id and close it; a no-op if that client is gone. */
void status_reply(struct status *s, uint64_t id, const char *text, size_t n);
/*
 * Client: send line (no newline in it) to the agent at path, copy the
 * answer to out. 0 or a negative errno (message printed to stderr).
 */
int status_command(const char *path, const char *line, FILE *out);

/* Close the listener and any client; cb(arg) once all are closed. */
void status_stop(struct status *s, void (*cb)(void *arg), void *arg);

/*
 * Client: ask the agent at path and copy its answer to out. Returns 0,
 * or a negative errno with a message already printed to stderr.
 */
int status_query(const char *path, int json, FILE *out);

#endif
