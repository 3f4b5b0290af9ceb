/*
 * listener: bind the collector's listening socket; see listener.h.
 */
#include "net/listener.h"

#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util.h"

/* The address of listen into ss/len. 0 or a negative errno (err set). */
static int
listener_resolve(const char *addr, struct sockaddr_storage *ss, socklen_t *len,
                 char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL;
    char *host = NULL, pstr[8];
    uint16_t port;
    int rc;

    if (tc_hostport_split(addr, &host, &port) < 0) {
        snprintf(err, errlen, "listen %s: not host:port", addr);
        return -EINVAL;
    }
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    snprintf(pstr, sizeof(pstr), "%u", (unsigned)port);
    rc = getaddrinfo(host, pstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "listen %s: %s", addr,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        rc = -EADDRNOTAVAIL;
        goto out;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
out:
    free(host);
    return rc;
}

/* A socket bound to listen; listening too if backlog > 0. */
static int
listener_bind(const char *addr, int backlog, char *err, size_t errlen)
{
    struct sockaddr_storage ss;
    socklen_t len;
    int one = 1, fd, rc;

    memset(&ss, 0, sizeof(ss));
    if ((rc = listener_resolve(addr, &ss, &len, err, errlen)) < 0)
        return rc;
    fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
        bind(fd, (const struct sockaddr *)&ss, len) < 0 ||
        (backlog > 0 && listen(fd, backlog) < 0)) {
        rc = -errno;
        snprintf(err, errlen, "listen %s: %s", addr, strerror(errno));
        if (fd >= 0)
            close(fd);
        return rc;
    }
    return fd;
}

int
listener_open(const char *addr, char *err, size_t errlen)
{
    return listener_bind(addr, 511, err, errlen);
}

int
listener_check(const char *addr, char *err, size_t errlen)
{
    int fd = listener_bind(addr, 0, err, errlen);

    if (fd < 0)
        return fd;
    close(fd);
    return 0;
}
