/*
 * router.h - matching a request against the route table (routes.h) and applying the row's
 * flags: everything decided from the request line and headers, before a byte of body.
 */
#ifndef SRV_ROUTER_H
#define SRV_ROUTER_H

#include "request.h"

/* First call (r->method, r->path, r->cors_origin set): finds the route and answers early
 * (404, OPTIONS, 405, 401, 503, 400, 413, 415); otherwise sets r->route and the captures
 * and moves r to SRV_PHASE_BODY. Returns what MHD's access handler must return. */
enum MHD_Result srv_router_begin(struct srv_request *r);
/* Last call, the body complete: 413 when it went past max-body, else the route's handler. */
enum MHD_Result srv_router_dispatch(struct srv_request *r);

#endif /* SRV_ROUTER_H */
