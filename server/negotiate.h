/*
 * negotiate.h - media types: what a Content-Type names, and which of the types an endpoint
 * can answer with an Accept header prefers (RFC 9110 sections 8.3 and 12.5.1).
 */
#ifndef SRV_NEGOTIATE_H
#define SRV_NEGOTIATE_H

/* Whether the header value ct names the media type `type` ("application/json; charset=utf-8"
 * names application/json); case-insensitive; ct may be NULL. */
int srv_media_type_is(const char *ct, const char *type);

/* The index in offers[0..n) of the type the Accept header prefers: the highest q-value of the
 * most specific range that matches it (type/subtype over type/any over any/any), ties going to the
 * earlier offer. No header (or an empty one) accepts anything: 0. -1 when it accepts none of
 * them (every match has q=0, or nothing matches). */
int srv_accept_choose(const char *accept, const char *const *offers, int n);

#endif /* SRV_NEGOTIATE_H */
