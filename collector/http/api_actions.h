/*
 * api_actions: the API's writes (POST /api/v1/incidents/ID/VERB and
 * /api/v1/problems/ID/VERB), run on a threadpool worker after the token
 * and role checks of api_handle: the JSON body checked, the action
 * recorded as tocsinctl records it, answered 202 with its id
 * (docs/api.md, "Actions"; docs/internals/api.md, "Writes").
 */
#ifndef HTTP_API_ACTIONS_H
#define HTTP_API_ACTIONS_H

#include "http/api_handlers.h"

/* A request body of an action, bytes (larger: 413 on the loop). */
#define API_ACTION_BODY_MAX (16 * 1024)
/* One text member (a note, a comment, a cause), bytes. */
#define API_ACTION_TEXT_MAX 4096

/* Record c's action; c's out fields filled (202, or a 400/503). */
void api_action(struct api_call *c);

#endif
