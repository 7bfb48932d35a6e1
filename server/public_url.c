/*
 * public_url.c - the URL clients reach edmd at (public_url.h).
 *
 * Behind a proxy, the Host a client used is in X-Forwarded-Host and its scheme in
 * X-Forwarded-Proto; a proxy that mounts edmd under a path says so in X-Forwarded-Prefix.
 * These headers come from the client side, so each is taken only when it is plainly what it
 * claims to be (a scheme of http or https; a host of host-name, IPv4 or [IPv6] characters
 * with an optional port; a prefix of path characters), else the next source is used: a
 * crafted header cannot put markup or a second URL into the answer. The first value of a
 * comma-separated list is the one the outermost proxy saw. --public-url overrides them all.
 */
#include "public_url.h"

#include <stdio.h>
#include <string.h>

/* The first element of a header's comma-separated value, if every byte of it is in `ok`. */
static int first_value(const char *v, const char *ok, char *out, size_t size) {
    if (!v) return 0;
    v += strspn(v, " \t");
    size_t n = strcspn(v, ", \t");
    if (n == 0 || n >= size || strspn(v, ok) < n) return 0;
    memcpy(out, v, n);
    out[n] = '\0';
    return 1;
}

#define ALNUM "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

void srv_public_url(struct srv_request *r, char *buf, size_t size) {
    const char *configured = r->srv->cfg->public_url;
    if (configured && *configured) {
        size_t n = strlen(configured);
        while (n > 0 && configured[n - 1] == '/') n--;
        snprintf(buf, size, "%.*s", (int)n, configured);
        return;
    }
    char scheme[8] = "http", host[256], prefix[256] = "";
    char proto[8];
    if (first_value(srv_request_header(r, "X-Forwarded-Proto"), ALNUM, proto, sizeof proto) &&
        (strcmp(proto, "http") == 0 || strcmp(proto, "https") == 0))
        snprintf(scheme, sizeof scheme, "%s", proto);
    if (!first_value(srv_request_header(r, "X-Forwarded-Host"), ALNUM ".-:[]", host, sizeof host) &&
        !first_value(srv_request_header(r, "Host"), ALNUM ".-:[]", host, sizeof host)) {
        const char *h = r->srv->cfg->host && *r->srv->cfg->host ? r->srv->cfg->host : "127.0.0.1";
        snprintf(host, sizeof host, strchr(h, ':') ? "[%s]:%u" : "%s:%u", h,
                 (unsigned)r->srv->port);
    }
    if (first_value(srv_request_header(r, "X-Forwarded-Prefix"), ALNUM "/-._~", prefix,
                    sizeof prefix)) {
        size_t n = strlen(prefix);
        while (n > 0 && prefix[n - 1] == '/') prefix[--n] = '\0';
        if (prefix[0] && prefix[0] != '/') prefix[0] = '\0'; /* a path, or nothing */
    }
    snprintf(buf, size, "%s://%s%s", scheme, host, prefix);
}
