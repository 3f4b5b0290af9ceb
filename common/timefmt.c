/*
 * timefmt: RFC 3339 in UTC; see timefmt.h.
 */
#include "timefmt.h"

#include <stdio.h>
#include <time.h>

size_t
tc_rfc3339(int64_t ns, int digits, char *buf, size_t len)
{
    int64_t sec = ns / 1000000000, frac = ns % 1000000000;
    struct tm tm;
    time_t t;
    size_t n;
    int w;

    if (len == 0)
        return 0;
    /* Floor division, so that a time before 1970 keeps a positive
     * fraction of its second. */
    if (frac < 0) {
        frac += 1000000000;
        sec--;
    }
    t = (time_t)sec;
    if (gmtime_r(&t, &tm) == NULL ||
        (n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm)) == 0) {
        w = snprintf(buf, len, "?");
        return (size_t)w < len ? (size_t)w : len - 1;
    }
    if (digits <= 0)
        w = snprintf(buf + n, len - n, "Z");
    else if (digits <= 3)
        w = snprintf(buf + n, len - n, ".%03dZ", (int)(frac / 1000000));
    else if (digits <= 6)
        w = snprintf(buf + n, len - n, ".%06dZ", (int)(frac / 1000));
    else
        w = snprintf(buf + n, len - n, ".%09dZ", (int)frac);
    n += (size_t)w;
    return n < len ? n : len - 1;
}
