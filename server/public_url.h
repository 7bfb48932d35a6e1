/*
 * public_url.h - the absolute URL a client reaches edmd at, for the URLs edmd hands out
 * (images of response_format "url", the OpenAPI document's servers entry).
 */
#ifndef SRV_PUBLIC_URL_H
#define SRV_PUBLIC_URL_H

#include <stddef.h>

#include "request.h"

/* Writes "scheme://host[:port][/prefix]" without a trailing '/': --public-url when set,
 * else from the request (X-Forwarded-Proto, X-Forwarded-Host or Host, X-Forwarded-Prefix),
 * else the address edmd listens on. */
void srv_public_url(struct srv_request *r, char *buf, size_t size);

#endif /* SRV_PUBLIC_URL_H */
