/*
 * api_web.c - GET / and the files of the web page (web/, embedded at build time).
 *
 * The page needs no API key (it asks for one when the API answers 401), so its row in
 * routes.c is PUBLIC like /healthz's. Data is static, so it is sent without a copy.
 */
#include <string.h>

#include "respond.h"
#include "routes.h"
#include "web_assets.h"

int srv_web_find(const char *path) {
    if (strcmp(path, "/") == 0) path = "/index.html";
    for (size_t i = 0; i < srv_assets_count; i++)
        if (strcmp(srv_assets[i].path, path) == 0) return (int)i;
    return -1;
}

enum MHD_Result srv_api_web(struct srv_request *r) {
    const struct srv_asset *a = &srv_assets[r->asset];
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(a->len, (void *)a->data, MHD_RESPMEM_PERSISTENT);
    if (!resp) return MHD_NO;
    MHD_add_response_header(resp, "Content-Type", a->content_type);
    MHD_add_response_header(resp, "Cache-Control", "no-cache");
    r->resp_bytes = a->len;
    return srv_respond_queue(r, 200, resp);
}
