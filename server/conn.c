/*
 * conn.c - open connections and their header and body deadlines (conn.h).
 *
 * Why not MHD's CONNECTION_TIMEOUT: it is an idle timeout, restarted by every byte, so a
 * client that sends one header line every few seconds (slowloris) holds its connection
 * forever, and a few hundred such clients hold every connection the listener has. The
 * deadlines here run from a fixed moment instead.
 *
 * One list under one mutex: MHD's threads add and remove records and move them between
 * phases; the housekeeping tick walks the list (a few thousand records at most: the
 * connection limits bound it) and shuts down the overdue ones. MHD reports a connection
 * closed under this lock before it closes the socket, so the tick never shuts down a
 * descriptor that has been closed, or reused for another connection.
 */
#include "conn.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "metrics.h"
#include "util.h"

struct srv_conn {
    int fd;
    int admin;
    enum srv_conn_phase phase;
    uint64_t deadline; /* monotonic ns; 0: none */
    int timed_out;
    struct srv_conn *prev, *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct srv_conn *conns;   /* [lock] */
static long open_count[2];       /* [lock] api, admin */
static uint64_t header_ns, body_ns;

void srv_conn_configure(double header_timeout_s, double body_timeout_s) {
    header_ns = (uint64_t)(header_timeout_s * 1e9);
    body_ns = (uint64_t)(body_timeout_s * 1e9);
}

/* [lock] */
static void set_phase(struct srv_conn *k, enum srv_conn_phase phase) {
    uint64_t span = phase == SRV_CONN_HEADERS ? header_ns : phase == SRV_CONN_BODY ? body_ns : 0;
    k->phase = phase;
    k->deadline = span ? srv_now_ns() + span : 0;
}

static void notify(int admin, struct MHD_Connection *c, void **socket_context,
                   enum MHD_ConnectionNotificationCode code) {
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        struct srv_conn *k = calloc(1, sizeof *k);
        if (!k) return; /* an untracked connection: only MHD's idle timeout applies to it */
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
        k->fd = ci ? ci->connect_fd : -1;
        k->admin = admin;
        pthread_mutex_lock(&lock);
        set_phase(k, SRV_CONN_HEADERS);
        k->next = conns;
        if (conns) conns->prev = k;
        conns = k;
        open_count[admin]++;
        pthread_mutex_unlock(&lock);
        *socket_context = k;
        return;
    }
    struct srv_conn *k = *socket_context;
    if (!k) return;
    *socket_context = NULL;
    pthread_mutex_lock(&lock);
    if (k->prev) k->prev->next = k->next;
    else conns = k->next;
    if (k->next) k->next->prev = k->prev;
    open_count[k->admin]--;
    pthread_mutex_unlock(&lock);
    free(k);
}

void srv_conn_notify_api(void *cls, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode code) {
    (void)cls;
    notify(0, c, socket_context, code);
}

void srv_conn_notify_admin(void *cls, struct MHD_Connection *c, void **socket_context,
                           enum MHD_ConnectionNotificationCode code) {
    (void)cls;
    notify(1, c, socket_context, code);
}

struct srv_conn *srv_conn_of(struct MHD_Connection *c) {
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

int srv_conn_is_admin(const struct srv_conn *k) { return k && k->admin; }

void srv_conn_set_phase(struct srv_conn *k, enum srv_conn_phase phase) {
    if (!k) return;
    pthread_mutex_lock(&lock);
    set_phase(k, phase);
    pthread_mutex_unlock(&lock);
}

int srv_conn_timed_out(struct srv_conn *k) {
    if (!k) return 0;
    pthread_mutex_lock(&lock);
    int t = k->timed_out;
    pthread_mutex_unlock(&lock);
    return t;
}

void srv_conn_enforce(void) {
    uint64_t now = srv_now_ns();
    pthread_mutex_lock(&lock);
    for (struct srv_conn *k = conns; k; k = k->next) {
        if (!k->deadline || now < k->deadline || k->timed_out || k->fd < 0) continue;
        k->timed_out = 1;
        shutdown(k->fd, SHUT_RDWR); /* MHD reads end of file and closes it in its thread */
        srv_metrics_connection_closed(k->phase == SRV_CONN_HEADERS ? SRV_CLOSE_HEADER_TIMEOUT
                                                                       : SRV_CLOSE_BODY_TIMEOUT);
    }
    pthread_mutex_unlock(&lock);
}

void srv_conn_counts(long *api, long *admin) {
    pthread_mutex_lock(&lock);
    *api = open_count[0];
    *admin = open_count[1];
    pthread_mutex_unlock(&lock);
}
