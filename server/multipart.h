/*
 * multipart.h - a multipart/form-data body (RFC 7578) split into its named parts with
 * libmicrohttpd's own post processor, under limits: what OpenAI's images.edit and
 * images.createVariation send.
 *
 * Ownership: srv_multipart_parse fills a caller's struct srv_form whose parts own their
 * bytes until srv_form_clear (also after a failure, when the form holds nothing).
 */
#ifndef SRV_MULTIPART_H
#define SRV_MULTIPART_H

#include <microhttpd.h>
#include <stddef.h>
#include <stdint.h>

#include "errors.h"

#define SRV_FORM_MAX_PARTS 64
#define SRV_FORM_MAX_NAME 63

struct srv_form_part {
    char name[SRV_FORM_MAX_NAME + 1];
    int is_file;   /* the part had a filename (a file part) */
    uint8_t *data; /* owned; a NUL follows the len bytes (text parts read as strings) */
    size_t len, cap; /* cap: bytes allocated */
};

struct srv_form_limits {
    int max_parts;   /* more parts: 400 */
    size_t max_text; /* bytes of a text part: 413 beyond, naming it */
    size_t max_file; /* bytes of a file part: 413 beyond, naming it */
};

struct srv_form {
    struct srv_form_part parts[SRV_FORM_MAX_PARTS];
    int n;
};

/* Splits body[0..len) of the request on conn (whose Content-Type gives the boundary) into
 * out. An empty body is an empty form. Errors: 400 bad_request for a malformed or truncated
 * body (no closing boundary), a part without a name or with a longer one than
 * SRV_FORM_MAX_NAME, a name given twice, too many parts, or no usable boundary; 413 for a
 * part past its limit. */
enum srv_err srv_multipart_parse(struct MHD_Connection *conn, const char *body, size_t len,
                                 const struct srv_form_limits *lim, struct srv_form *out,
                                 struct srv_error *err);
/* The part named name, or NULL. Borrowed from the form. */
const struct srv_form_part *srv_form_find(const struct srv_form *form, const char *name);
void srv_form_clear(struct srv_form *form);

#endif /* SRV_MULTIPART_H */
