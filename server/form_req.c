/*
 * form_req.c - the form of /v1/images/edits and /v1/images/variations as a generation
 * request (form_req.h).
 *
 * The text parts become one JSON object handed to the JSON API's parser
 * (srv_json_req_parse_object), so the two APIs share every field, range, default and message;
 * only the images come apart, as bytes. A text part is a string for the fields that are
 * strings (the table's choices, OpenAI's words, the hashes) and is read as JSON otherwise:
 * multipart has no types, and the openai SDK sends n = 2 as the text "2".
 */
#include "form_req.h"

#include <string.h>

#include "edm.h"

const struct srv_form_limits srv_form_images_limits = {
    .max_parts = 32, .max_text = 64 * 1024, .max_file = EDM_PNG_MAX_BYTES};

/* A text part as the JSON value of its field (a new reference), or NULL with the error. */
static json_t *part_value(const struct srv_form_part *p, struct srv_error *err) {
    const char *text = (const char *)p->data;
    json_t *v = json_string(p->name); /* a key of the object must be UTF-8 too */
    if (!v) {
        srv_error_set(err, SRV_E_INVALID_PARAM, NULL, "a field's name is not UTF-8 text");
        return NULL;
    }
    json_decref(v);
    v = NULL;
    if (!srv_json_req_string_field(p->name)) v = json_loadb(text, p->len, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, NULL);
    if (!v) v = json_stringn(text, p->len); /* NULL when not UTF-8 */
    if (!v) srv_error_set(err, SRV_E_INVALID_PARAM, p->name, "'%s' is not UTF-8 text", p->name);
    return v;
}

/* The image part: "image", or the one entry of "image[]". */
static enum srv_err find_image(const struct srv_form *form, const struct srv_form_part **out,
                               struct srv_error *err) {
    const struct srv_form_part *a = srv_form_find(form, "image"), *b = srv_form_find(form, "image[]");
    *out = a ? a : b;
    if (a && b) return srv_error_set(err, SRV_E_INVALID_PARAM, "image", "give one image, as 'image'");
    if (!*out)
        return srv_error_set(err, SRV_E_INVALID_PARAM, "image", "'image' is required: the PNG to start from, as a file part");
    return SRV_OK;
}

enum srv_err srv_form_request(const struct srv_form *form, enum srv_form_kind kind,
                              const struct srv_catalog *cat, const struct srv_req_limits *lim,
                              struct srv_gen_request *out, struct srv_error *err) {
    memset(out, 0, sizeof *out);
    const struct srv_form_part *image, *mask = srv_form_find(form, "mask");
    enum srv_err rc = find_image(form, &image, err);
    if (rc) return rc;
    if (mask && kind == SRV_FORM_VARIATIONS)
        return srv_error_set(err, SRV_E_INVALID_PARAM, "mask",
                             "variations take no mask (POST /v1/images/edits repaints a masked region)");
    json_t *fields = json_object();
    if (!fields) return srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory");
    for (int i = 0; i < form->n && !rc; i++) {
        const struct srv_form_part *p = &form->parts[i];
        if (p == image || p == mask) continue;
        if (p->is_file) {
            rc = srv_error_set(err, SRV_E_INVALID_PARAM, p->name, "'%s' must be a text field, not a file", p->name);
            break;
        }
        json_t *v = part_value(p, err);
        if (!v || json_object_set_new(fields, p->name, v))
            rc = v ? srv_error_set(err, SRV_E_INTERNAL, NULL, "out of memory") : SRV_E_INVALID_PARAM;
    }
    const struct srv_image_src src = {.image = image->data,
                                      .image_len = image->len,
                                      .mask = mask ? mask->data : NULL,
                                      .mask_len = mask ? mask->len : 0,
                                      .image_param = "image",
                                      .mask_param = "mask",
                                      .image_is_mask = kind == SRV_FORM_EDITS};
    if (!rc) rc = srv_json_req_parse_object(fields, &src, cat, lim, out, err);
    json_decref(fields);
    return rc;
}
