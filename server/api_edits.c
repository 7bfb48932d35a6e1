/*
 * api_edits.c - OpenAI's POST /v1/images/edits and POST /v1/images/variations, the
 * multipart/form-data endpoints of images.edit and images.createVariation.
 *
 * The router has checked the Content-Type and read the body (within max-body). The body is
 * split into parts (multipart.c, libmicrohttpd's post processor), the parts become a
 * generation request (form_req.c: the image and mask are file parts, every other field is
 * the JSON API's), and the job is answered as /v1/images/generations answers: OpenAI's
 * Images response (b64_json or url), or the PNG for n = 1 when Accept asks for it.
 *   edits       inpainting with a mask (white = repaint, or OpenAI's transparent = repaint),
 *               the image's own transparency without one, else img2img; strength default
 *               1 with a mask, 0.5 without (EDM_IMG2IMG_DEFAULT_STRENGTH)
 *   variations  img2img of the image at the default strength with fresh seeds (or given
 *               ones): variations of it
 */
#include "form_req.h"
#include "respond.h"
#include "routes.h"

static enum MHD_Result form_job(struct srv_request *r, enum srv_form_kind kind) {
    struct srv_server *srv = r->srv;
    struct srv_error err;
    struct srv_form form;
    struct srv_gen_request req;
    struct srv_job *job = NULL;
    srv_error_clear(&err);
    enum srv_err rc = srv_multipart_parse(r->conn, r->body.data, r->body.len, &srv_form_images_limits, &form, &err);
    if (!rc) rc = srv_form_request(&form, kind, &srv->models->catalog, &srv->limits, &req, &err);
    srv_form_clear(&form);
    if (!rc) rc = srv_job_from_request(srv->models, &req, 0, 0, &job, &err);
    if (rc) return srv_respond_error(r, &err);
    return srv_api_answer_job(r, job);
}

enum MHD_Result srv_api_edits(struct srv_request *r) { return form_job(r, SRV_FORM_EDITS); }

enum MHD_Result srv_api_variations(struct srv_request *r) { return form_job(r, SRV_FORM_VARIATIONS); }
