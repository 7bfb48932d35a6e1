/*
 * form_req.h - the form of OpenAI's POST /v1/images/edits and /v1/images/variations as a
 * generation request: the file parts are the images, the text parts the request's fields.
 *
 * Pure (the multipart fuzz target runs it): a parsed form, the catalog and the limits in; a
 * complete request (srv_gen_request, json_req.h) or an error naming the field out.
 */
#ifndef SRV_FORM_REQ_H
#define SRV_FORM_REQ_H

#include "json_req.h"
#include "multipart.h"

enum srv_form_kind {
    SRV_FORM_EDITS,     /* image, optional mask: inpainting, or img2img without a mask */
    SRV_FORM_VARIATIONS /* image only: img2img at the default strength, fresh seeds */
};

/* The form's limits for these endpoints (its text fields are short; files are bounded by the
 * body's max-body). */
extern const struct srv_form_limits srv_form_images_limits;

/* Builds out from form. The image is the file part "image" (or "image[]", as the openai SDK
 * names one of a list); edits also take "mask", and without one an image with transparent
 * pixels is its own mask (OpenAI's convention). Every text part is a field of the JSON API
 * (json_req.h) read as JSON where that field is not a string ("n" = "2" is 2, "seeds" =
 * "[1,2]" a list), so the same names, ranges and messages apply; a prompt that names no
 * class of the model is accepted and ignored (OpenAI's SDK always sends one). Errors: 400
 * naming the part (missing image, a file where text belongs, an unknown field, ...), and
 * whatever the JSON fields earn. On error out holds nothing. */
enum srv_err srv_form_request(const struct srv_form *form, enum srv_form_kind kind,
                              const struct srv_catalog *cat, const struct srv_req_limits *lim,
                              struct srv_gen_request *out, struct srv_error *err);

#endif /* SRV_FORM_REQ_H */
