/*
 * worker.c - one thread per compute device: step-level continuous batching.
 *
 * Each tick, under the lock: drop jobs that ended (cancelled, failed) or passed their
 * deadline; admit queued jobs while fewer than max_batch images are unfinished; gather up to
 * max_batch pending images of the oldest job's model, oldest job first. Then, unlocked, one
 * edm_denoiser_step evaluates D once for the whole batch and advances every image by one
 * network evaluation (an Euler step, or a Heun stage). When several models have work they
 * take turns, one model per batch. Back under the lock: progress, batch
 * figures, and jobs whose images are all done move to the encoders.
 *
 * New requests therefore join at the next tick, and a job that leaves frees its batch slots
 * at once. The images of a job keep their own sampler state, so a batch freely mixes steps,
 * stages, sigma schedules, seeds, labels and sampler settings; only the model is shared.
 */
#include <stdio.h>
#include <stdlib.h>

#include "sched_internal.h"
#include "util.h"

/* [lock] Removes a job from the worker's list and drops the list's reference. */
static void worker_drop(struct srv_worker *w, struct srv_job *job) {
    struct srv_sched *g = &srv_sched_g;
    int unfinished = job->n - job->images_done;
    w->active_images -= unfinished;
    g->images_in_flight -= unfinished;
    srv_job_list_remove(&w->active, job);
    srv_job_unref(job);
}

/* [lock] Jobs that ended elsewhere or ran out of time leave the batch. */
static void worker_prune(struct srv_worker *w, uint64_t now) {
    struct srv_error e;
    for (struct srv_job *job = w->active.head, *next; job; job = next) {
        next = job->q_next;
        if (job->state == SRV_JOB_RUNNING && now >= job->deadline) {
            srv_error_set(&e, SRV_E_DEADLINE, "timeout_ms",
                          "the deadline (%ld ms) passed after %d of %d steps", job->req.timeout_ms,
                          job->step_done, job->steps);
            srv_sched_finish(job, SRV_JOB_FAILED, &e);
        }
        if (srv_job_state_terminal(job->state)) worker_drop(w, job);
    }
}

/* [lock] Moves queued jobs onto the worker while it has room. */
static void worker_admit(struct srv_worker *w, uint64_t now) {
    struct srv_sched *g = &srv_sched_g;
    struct srv_error e;
    while (!w->failed && g->queue.head && w->active_images < g->opts.max_batch) {
        struct srv_job *job = srv_job_list_pop(&g->queue); /* the queue's reference moves here */
        job->in_queue = 0;
        if (now >= job->deadline) {
            srv_error_set(&e, SRV_E_DEADLINE, "timeout_ms", "the deadline (%ld ms) passed while queued",
                          job->req.timeout_ms);
            srv_sched_finish(job, SRV_JOB_FAILED, &e);
            srv_job_unref(job);
            continue;
        }
        job->state = SRV_JOB_RUNNING;
        job->t_started = now;
        srv_metrics_queue_wait(srv_ms_between(job->t_queued, now) / 1e3);
        srv_job_list_push(&w->active, job);
        w->active_images += job->n;
        g->images_in_flight += job->n;
        srv_sched_notify(job);
    }
}

/* [lock] After a batch: progress, batch figures, and finished jobs to the encoders. */
static void worker_account(struct srv_worker *w, struct srv_job *job, int batch_size, uint64_t now) {
    struct srv_sched *g = &srv_sched_g;
    if (srv_job_state_terminal(job->state)) return; /* cancelled meanwhile; pruned next tick */
    job->batch_sum += batch_size;
    job->batch_ticks++;
    if (batch_size > job->batch_max) job->batch_max = batch_size;
    int step = job->steps;
    long nfe = 0;
    for (int i = 0; i < job->n; i++) {
        const edm_sample *s = job->samples[i];
        if (!job->image_done[i] && !edm_sample_pending(s)) {
            job->image_done[i] = 1;
            job->images_done++;
            w->active_images--;
            g->images_in_flight--;
        }
        int si = edm_sample_step(s);
        if (si < step) step = si;
        nfe += edm_sample_nfe_done(s);
    }
    while (job->step_done < step) job->nfe_at_step[++job->step_done] = nfe;
    job->nfe_done = nfe;
    if (job->images_done == job->n) {
        job->t_sampled = now;
        srv_job_list_remove(&w->active, job);
        srv_job_list_push(&g->encode_queue, job); /* the reference moves with it */
        pthread_cond_signal(&g->encode);
    }
    srv_sched_notify(job);
}

/* [lock] The model of the next batch: the first model after the previous batch's (in
 * catalog order, wrapping around) that has an active job. */
static int worker_next_model(struct srv_worker *w) {
    int best = -1, first = -1;
    for (const struct srv_job *job = w->active.head; job; job = job->q_next) {
        int m = job->model_index;
        if (first < 0 || m < first) first = m;
        if (m > w->last_model && (best < 0 || m < best)) best = m;
    }
    w->last_model = best >= 0 ? best : first;
    return w->last_model;
}

/* [lock] An image of the job failed on its own (edm_sample_status): the job fails alone; the
 * other jobs of the batch advanced as they would have without it. */
static int worker_image_failed(struct srv_job *job) {
    edm_error eerr;
    for (int i = 0; i < job->n; i++)
        if (!job->image_done[i] && edm_sample_status(job->samples[i], &eerr) != EDM_OK) {
            struct srv_error e;
            srv_error_set(&e, SRV_E_DIVERGED, NULL, "image %d (seed %llu): %s", i,
                          (unsigned long long)edm_sample_seed(job->samples[i]), eerr.message);
            srv_sched_finish(job, SRV_JOB_FAILED, &e);
            return 1;
        }
    return 0;
}

/* [lock] The engine failed on this batch (the device, memory): every job in it fails. */
static void worker_engine_error(struct srv_worker *w, struct srv_job **owners, int k, const edm_error *eerr) {
    struct srv_sched *g = &srv_sched_g;
    struct srv_error e;
    srv_error_set(&e, SRV_E_ENGINE, NULL, "the engine failed: %s", eerr->message);
    for (int j = 0; j < k; j++) srv_sched_finish(owners[j], SRV_JOB_FAILED, &e);
    if (edm_backend_device_lost(w->backend) && !w->failed) {
        w->failed = 1;
        g->n_failed_workers++;
        fprintf(stderr, "edmd: worker %d: device failed: %s\n", w->index, eerr->message);
        if (g->n_failed_workers == g->n_workers)
            srv_sched_fail_queue(SRV_E_UNAVAILABLE, "the compute device failed");
    }
}

void *srv_worker_main(void *arg) {
    struct srv_worker *w = arg;
    struct srv_sched *g = &srv_sched_g;
    const int max_batch = g->opts.max_batch;
    char name[16];
    snprintf(name, sizeof name, "edmd-worker%d", w->index); /* the compute threads it spawns inherit it */
    pthread_setname_np(pthread_self(), name);
    edm_sample **batch = malloc(sizeof *batch * (size_t)max_batch);
    struct srv_job **owners = malloc(sizeof *owners * (size_t)max_batch);

    pthread_mutex_lock(&g->lock);
    if (!batch || !owners) { /* cannot work: behave as a failed device */
        w->failed = 1;
        g->n_failed_workers++;
    }
    while (!g->stopping) {
        uint64_t now = srv_now_ns();
        worker_prune(w, now);
        worker_admit(w, now);
        if (!w->active.head || w->failed) {
            pthread_cond_wait(&g->work, &g->lock);
            continue;
        }
        /* gather: one model per batch, taking turns between the models that have work (so
         * a long job of one model does not starve another's); oldest job first */
        int model = worker_next_model(w), k = 0;
        for (struct srv_job *job = w->active.head; job && k < max_batch; job = job->q_next) {
            if (job->model_index != model) continue;
            for (int i = 0; i < job->n && k < max_batch; i++)
                if (!job->image_done[i]) {
                    batch[k] = job->samples[i];
                    owners[k++] = job;
                }
        }
        /* The jobs stay on this worker's list (only this thread removes them), so their
         * samples stay alive while unlocked; nobody else touches a running job's samples. */
        pthread_mutex_unlock(&g->lock);
        int evaluated = 0;
        edm_error eerr;
        uint64_t t0 = srv_now_ns();
        enum edm_status st = edm_denoiser_step(w->den[model], batch, k, &evaluated, &eerr);
        uint64_t t1 = srv_now_ns();
        pthread_mutex_lock(&g->lock);
        if (st != EDM_OK) {
            worker_engine_error(w, owners, k, &eerr);
            continue;
        }
        srv_metrics_batch(evaluated, srv_ms_between(t0, t1) / 1e3);
        for (int j = 0; j < k;) {
            struct srv_job *job = owners[j];
            while (j < k && owners[j] == job) j++;
            if (!srv_job_state_terminal(job->state) && worker_image_failed(job)) continue;
            worker_account(w, job, evaluated, t1);
        }
    }
    while (w->active.head) worker_drop(w, w->active.head);
    pthread_mutex_unlock(&g->lock);
    free(batch);
    free(owners);
    return NULL;
}
