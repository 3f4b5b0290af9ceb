/*
 * listener: the collector's listening socket, opened before anything
 * else is created (the store), and the bind test of -n.
 *
 * The socket is bound and listening when listener_open returns, so a
 * port that is taken or an address that is not local stops start-up
 * before the store exists: a failed start leaves no new database.
 * The server adopts the descriptor (server_start).
 */
#ifndef COLLECTOR_LISTENER_H
#define COLLECTOR_LISTENER_H

#include <stddef.h>

/*
 * Resolve addr ("host:port", "[v6]:port"; a name is resolved once,
 * synchronously), bind with SO_REUSEADDR (a restart need not wait out
 * TIME_WAIT) and listen. Returns the non-blocking, close-on-exec
 * descriptor, or a negative errno with a message in err such as
 *   "listen 127.0.0.1:7400: address already in use"
 */
int listener_open(const char *addr, char *err, size_t errlen);

/*
 * For -n: bind a socket to addr as listener_open would, and close it.
 * 0, or a negative errno with a message in err. -EADDRINUSE is the
 * caller's to judge: the collector this configuration belongs to may be
 * the one holding the port.
 */
int listener_check(const char *addr, char *err, size_t errlen);

#endif
