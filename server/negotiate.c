/*
 * negotiate.c - media types and Accept (negotiate.h).
 *
 * Accept is a comma-separated list of media ranges, each with optional parameters, of which
 * q (0..1, three decimals) weighs it; a range without q has q=1. For each offered type the
 * most specific matching range decides its weight ("image/png;q=0, image/ *" without the space
 * refuses PNG but takes other images); the offer with the highest weight wins. A malformed q reads
 * as 0, a malformed range matches nothing: a broken header cannot promote a type.
 */
#include "negotiate.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static size_t trim_end(const char *s, size_t len) {
    while (len && isspace((unsigned char)s[len - 1])) len--;
    return len;
}

int srv_media_type_is(const char *ct, const char *type) {
    if (!ct) return 0;
    while (isspace((unsigned char)*ct)) ct++;
    size_t len = trim_end(ct, strcspn(ct, ";"));
    return len == strlen(type) && strncasecmp(ct, type, len) == 0;
}

/* q of one range's parameters "; a=b; q=0.5" (1 when absent, 0 when malformed). */
static double quality(const char *params, size_t len) {
    const char *p = params, *end = params + len;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        while (p < stop && isspace((unsigned char)*p)) p++;
        if (stop - p >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=') {
            char buf[16];
            size_t n = trim_end(p + 2, (size_t)(stop - p - 2));
            if (n == 0 || n >= sizeof buf) return 0;
            memcpy(buf, p + 2, n);
            buf[n] = '\0';
            char *e;
            double q = strtod(buf, &e);
            return *e == '\0' && q >= 0 && q <= 1 ? q : 0;
        }
        p = semi ? semi + 1 : end;
    }
    return 1;
}

/* How specifically range[0..len) matches type: 3 exact, 2 "type/ *", 1 "* / *" (written here
 * with spaces), 0 not at all. */
static int specificity(const char *range, size_t len, const char *type) {
    const char *slash = memchr(range, '/', len);
    if (!slash) return 0;
    size_t major = (size_t)(slash - range), minor = len - major - 1;
    const char *type_slash = strchr(type, '/');
    size_t type_major = (size_t)(type_slash - type);
    if (major == 1 && range[0] == '*') return minor == 1 && slash[1] == '*' ? 1 : 0;
    if (major != type_major || strncasecmp(range, type, major) != 0) return 0;
    if (minor == 1 && slash[1] == '*') return 2;
    return minor == strlen(type_slash + 1) && strncasecmp(slash + 1, type_slash + 1, minor) == 0
               ? 3
               : 0;
}

int srv_accept_choose(const char *accept, const char *const *offers, int n) {
    if (!accept || accept[strspn(accept, " \t,")] == '\0') return n > 0 ? 0 : -1;
    int best = -1;
    double best_q = 0;
    for (int i = 0; i < n; i++) {
        int spec = 0;
        double q = 0;
        for (const char *p = accept; *p;) {
            size_t len = strcspn(p, ",");
            const char *r = p;
            while (r < p + len && isspace((unsigned char)*r)) r++;
            size_t rlen = strcspn(r, ";,");
            size_t tlen = trim_end(r, rlen);
            int s = specificity(r, tlen, offers[i]);
            if (s > spec) {
                spec = s;
                q = r[rlen] == ';' ? quality(r + rlen + 1, (size_t)(p + len - r - rlen - 1)) : 1;
            }
            p += len;
            if (*p == ',') p++;
        }
        if (q > best_q) {
            best_q = q;
            best = i;
        }
    }
    return best;
}
