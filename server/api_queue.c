/*
 * api_queue.c - GET /v1/jobs: the queue view, recent asynchronous jobs newest first, what
 * a front end shows as its queue and history (ComfyUI's /queue and /history).
 *
 * Paginated as OpenAI's lists are: ?limit=N (1..100, default 20) and ?after=ID, the last id
 * of the page before; the answer is {"object": "list", "data": [Job...], "first_id",
 * "last_id", "has_more"}. Each entry is the Job of GET /v1/jobs/{id} with its images as URLs
 * only; listing marks no image read.
 */
#include <stdlib.h>
#include <string.h>

#include "respond.h"
#include "routes.h"
#include "scheduler.h"

#define LIST_MAX 100

enum MHD_Result srv_api_jobs_list(struct srv_request *r) {
    struct srv_error e;
    const char *limit_s = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *after = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, "after");
    long limit = 20;
    if (limit_s) {
        char *end;
        limit = strtol(limit_s, &end, 10);
        if (end == limit_s || *end || limit < 1 || limit > LIST_MAX) {
            srv_error_set(&e, SRV_E_INVALID_PARAM, "limit", "'limit' must be an integer in 1..%d",
                          LIST_MAX);
            return srv_respond_error(r, &e);
        }
    }
    if (after && !*after) after = NULL;
    struct srv_job *jobs[LIST_MAX];
    int has_more = 0, n = srv_sched_list_jobs(after, (int)limit, jobs, &has_more);
    if (n == -2) {
        srv_error_set(&e, SRV_E_INVALID_PARAM, "after",
                      "'after': no job '%.64s' (unknown, or expired)", after);
        return srv_respond_error(r, &e);
    }
    json_t *data = json_array();
    for (int i = 0; i < n; i++) {
        struct srv_job_snapshot snap;
        srv_sched_lock();
        srv_job_snapshot(jobs[i], &snap);
        srv_sched_unlock();
        if (data && json_array_append_new(data, srv_job_status_json(jobs[i], &snap, 0))) {
            json_decref(data);
            data = NULL;
        }
    }
    json_t *body = data && n >= 0
                       ? json_pack("{s:s, s:o, s:s?, s:s?, s:b}", "object", "list", "data", data,
                                   "first_id", n > 0 ? jobs[0]->id : NULL, "last_id",
                                   n > 0 ? jobs[n - 1]->id : NULL, "has_more", has_more)
                       : (json_decref(data), NULL);
    for (int i = 0; i < n; i++) srv_job_unref(jobs[i]);
    return srv_respond_json(r, 200, body, NULL);
}
