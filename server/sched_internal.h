/*
 * sched_internal.h - state shared by scheduler.c, worker.c and encoder.c (not for the HTTP
 * side, which goes through scheduler.h).
 *
 * A job is on at most one list at a time, linked through q_prev/q_next: the queue, one
 * worker's active list, or the encoder queue. The list holds one reference; moving a job
 * between lists moves the reference.
 */
#ifndef SRV_SCHED_INTERNAL_H
#define SRV_SCHED_INTERNAL_H

#include <pthread.h>

#include "scheduler.h"

struct srv_job_list {
    struct srv_job *head, *tail;
    long len;
};

struct srv_worker {
    pthread_t thread;
    int started, index, device;
    edm_backend *backend;
    edm_denoiser **den;        /* [n models] */
    struct srv_job_list active; /* [lock] */
    int active_images;         /* [lock] unfinished images of the active jobs */
    int failed;                /* [lock] the backend failed; takes no more work */
    int last_model;            /* the model of the previous batch (models take turns) */
};

#define SRV_TABLE_BUCKETS 4096

struct srv_sched {
    pthread_mutex_t lock;
    pthread_cond_t work, encode, idle;
    struct srv_sched_options opts;
    struct srv_job_list queue, encode_queue;
    struct srv_job *table_head, *table_tail; /* async jobs, oldest first (t_next) */
    struct srv_job *buckets[SRV_TABLE_BUCKETS];
    long table_len;
    long unfinished;       /* accepted jobs not yet terminal */
    long images_in_flight; /* unfinished images on workers */
    int draining, stopping, n_failed_workers;
    struct srv_worker *workers;
    int n_workers;
    pthread_t *encoders;
    int n_encoders;
    char describe[512];
};

extern struct srv_sched srv_sched_g;

void srv_job_list_push(struct srv_job_list *l, struct srv_job *job);
void srv_job_list_remove(struct srv_job_list *l, struct srv_job *job);
struct srv_job *srv_job_list_pop(struct srv_job_list *l);

/* [lock] Fails every queued job (no worker left to run them). */
void srv_sched_fail_queue(enum srv_err code, const char *message);

void *srv_worker_main(void *arg);
void *srv_encoder_main(void *arg);

#endif /* SRV_SCHED_INTERNAL_H */
