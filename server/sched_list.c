/*
 * sched_list.c - the queue view: the table's async jobs, newest first, a page at a time
 * (scheduler.h, srv_sched_list_jobs), for GET /v1/jobs.
 *
 * The table keeps jobs in submission order (scheduler.c), so the newest is its tail; a page
 * is cut under the lock from a snapshot of the order. This is the one question the queue
 * view asks of the job store, so a store that keeps jobs elsewhere (shared between replicas)
 * answers it with its own ordered index.
 */
#include <stdlib.h>
#include <string.h>

#include "sched_internal.h"

int srv_sched_list_jobs(const char *after, int limit, struct srv_job **out, int *has_more) {
    struct srv_sched *g = &srv_sched_g;
    int count = 0;
    *has_more = 0;
    pthread_mutex_lock(&g->lock);
    struct srv_job **order = malloc(((size_t)g->table_len + 1) * sizeof *order);
    if (!order) {
        pthread_mutex_unlock(&g->lock);
        return -1;
    }
    long n = 0, start = -1;
    for (struct srv_job *j = g->table_head; j; j = j->t_next) order[n++] = j;
    if (!after) {
        start = n - 1; /* the newest */
    } else {
        long k = 0;
        while (k < n && strcmp(order[k]->id, after) != 0) k++;
        start = k - 1;          /* the one submitted before `after` */
        if (k == n) count = -2; /* `after` names no job the table holds */
    }
    for (long k = start; count >= 0 && k >= 0 && count < limit; k--)
        out[count++] = srv_job_ref(order[k]);
    *has_more = count >= 0 && start + 1 > count;
    pthread_mutex_unlock(&g->lock);
    free(order);
    return count;
}
