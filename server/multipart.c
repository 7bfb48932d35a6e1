/*
 * multipart.c - multipart/form-data bodies with libmicrohttpd's post processor (multipart.h).
 *
 * The router has already read the whole body (within max-body), so it goes through the post
 * processor in one call; the iterator appends each part's bytes as they come (a part may
 * come in several pieces, at increasing offsets) and enforces the limits as it goes, so a
 * huge part is refused without being copied. What MHD 0.9.75's post processor does and this
 * file relies on: it calls the iterator at least once per part, at offset 0 (with no bytes
 * for an empty part), with the part's name (NULL when the Content-Disposition has none) and
 * a filename for file parts; MHD_post_process fails on a malformed body and
 * MHD_destroy_post_processor reports one that stopped before its closing boundary.
 *
 * A part begins where the iterator sees offset 0 after bytes of the one before it, or a new
 * name: so a name sent twice is refused, except that an empty part followed by a part of the
 * same name reads as one part (the post processor's calls do not tell them apart).
 */
#include "multipart.h"

#include <stdlib.h>
#include <string.h>

/* The processor's window for a part's headers and the boundary (MHD needs 2 boundaries). */
#define PP_BUFFER 8192

struct walk {
    struct srv_form *form;
    const struct srv_form_limits *lim;
    struct srv_error *err;
    enum srv_err rc;
};

static enum MHD_Result fail(struct walk *w, enum srv_err code, const char *param, const char *what) {
    w->rc = srv_error_set(w->err, code, param, "%s", what);
    return MHD_NO;
}

/* Room for n more bytes (and the NUL) in part p. */
static int part_grow(struct srv_form_part *p, size_t n) {
    if (p->len + n + 1 <= p->cap) return 0;
    size_t want = p->cap ? p->cap : 256;
    while (want < p->len + n + 1) want *= 2;
    uint8_t *data = realloc(p->data, want);
    if (!data) return -1;
    p->data = data;
    p->cap = want;
    return 0;
}

static enum MHD_Result on_part(void *cls, enum MHD_ValueKind kind, const char *key, const char *filename,
                               const char *content_type, const char *transfer_encoding, const char *data,
                               uint64_t off, size_t size) {
    (void)kind, (void)content_type, (void)transfer_encoding;
    struct walk *w = cls;
    struct srv_form *f = w->form;
    if (!key || !*key) return fail(w, SRV_E_BAD_REQUEST, NULL, "a part of the form has no name");
    if (strlen(key) > SRV_FORM_MAX_NAME)
        return fail(w, SRV_E_BAD_REQUEST, NULL, "a part of the form has a name longer than 63 bytes");
    struct srv_form_part *p = f->n ? &f->parts[f->n - 1] : NULL;
    if (off == 0 && (!p || p->len > 0 || strcmp(p->name, key) != 0)) { /* a new part */
        if (srv_form_find(f, key)) {
            w->rc = srv_error_set(w->err, SRV_E_BAD_REQUEST, key, "the form gives '%s' twice", key);
            return MHD_NO;
        }
        if (f->n >= w->lim->max_parts || f->n >= SRV_FORM_MAX_PARTS) {
            w->rc = srv_error_set(w->err, SRV_E_BAD_REQUEST, NULL, "the form has more than %d parts",
                                  w->lim->max_parts);
            return MHD_NO;
        }
        p = &f->parts[f->n++];
        memset(p, 0, sizeof *p);
        memcpy(p->name, key, strlen(key) + 1);
        p->is_file = filename != NULL;
    }
    if (!p || off != p->len) return fail(w, SRV_E_BAD_REQUEST, key, "the form's parts came out of order");
    const size_t limit = p->is_file ? w->lim->max_file : w->lim->max_text;
    if (size > limit - p->len) {
        w->rc = srv_error_set(w->err, SRV_E_TOO_LARGE, key, "the %s part '%s' is larger than %zu bytes",
                              p->is_file ? "file" : "text", key, limit);
        return MHD_NO;
    }
    if (part_grow(p, size)) return fail(w, SRV_E_INTERNAL, NULL, "out of memory reading the form");
    memcpy(p->data + p->len, data, size);
    p->len += size;
    p->data[p->len] = '\0';
    return MHD_YES;
}

const struct srv_form_part *srv_form_find(const struct srv_form *form, const char *name) {
    for (int i = 0; i < form->n; i++)
        if (strcmp(form->parts[i].name, name) == 0) return &form->parts[i];
    return NULL;
}

void srv_form_clear(struct srv_form *form) {
    for (int i = 0; i < form->n; i++) free(form->parts[i].data);
    form->n = 0;
}

enum srv_err srv_multipart_parse(struct MHD_Connection *conn, const char *body, size_t len,
                                 const struct srv_form_limits *lim, struct srv_form *out,
                                 struct srv_error *err) {
    out->n = 0;
    if (len == 0) return SRV_OK;
    struct walk w = {out, lim, err, SRV_OK};
    struct MHD_PostProcessor *pp = MHD_create_post_processor(conn, PP_BUFFER, on_part, &w);
    if (!pp)
        return srv_error_set(err, SRV_E_BAD_REQUEST, NULL,
                             "the body must be multipart/form-data with a boundary of at most %d "
                             "characters",
                             PP_BUFFER / 2 - 1);
    enum MHD_Result ok = MHD_post_process(pp, body, len);
    enum MHD_Result complete = MHD_destroy_post_processor(pp);
    if (w.rc == SRV_OK && ok != MHD_YES)
        w.rc = srv_error_set(err, SRV_E_BAD_REQUEST, NULL, "the multipart/form-data body is malformed");
    if (w.rc == SRV_OK && complete != MHD_YES)
        w.rc = srv_error_set(err, SRV_E_BAD_REQUEST, NULL,
                             "the multipart/form-data body is cut short (no closing boundary)");
    if (w.rc != SRV_OK) srv_form_clear(out);
    return w.rc;
}
