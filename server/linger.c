/*
 * linger.c - lingering close (linger.h): one thread, poll(2) over the lingering sockets and
 * a wake-up pipe.
 *
 * The set is small (SRV_LINGER_MAX) and changes rarely, so it is a plain array under one
 * mutex; the thread holds the mutex except while it sleeps in poll. Sockets are
 * non-blocking already (a duplicate shares MHD's file status flags), so each read drains
 * what has arrived without blocking.
 */
#include "linger.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <unistd.h>

#include "util.h"

struct lingering {
    int fd;
    uint64_t until, quiet_until; /* monotonic ns */
    size_t bytes;
    int done; /* the client closed, failed, or spent the byte budget */
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct lingering set[SRV_LINGER_MAX]; /* [lock] */
static int n_set;                            /* [lock] */
static int stopping;                         /* [lock] */
static int wake_pipe[2] = {-1, -1};
static pthread_t thread;
static int started;

/* [lock] Reads what arrived; returns 1 when the socket is done with (closed by the client,
 * an error, or its byte budget spent). */
static int drain(struct lingering *l, uint64_t now) {
    char scratch[65536];
    for (;;) {
        ssize_t n = read(l->fd, scratch, sizeof scratch);
        if (n > 0) {
            l->bytes += (size_t)n;
            l->quiet_until = now + (uint64_t)SRV_LINGER_IDLE_MS * 1000000u;
            if (l->bytes >= SRV_DISCARD_MAX_BYTES) return 1;
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        return !(n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK));
    }
}

static void *linger_main(void *arg) {
    (void)arg;
    struct pollfd pfd[SRV_LINGER_MAX + 1];
    pthread_mutex_lock(&lock);
    while (!stopping) {
        uint64_t now = srv_now_ns(), next = now + 1000000000u;
        for (int i = 0; i < n_set; i++) {
            pfd[i] = (struct pollfd){.fd = set[i].fd, .events = POLLIN};
            uint64_t t = set[i].until < set[i].quiet_until ? set[i].until : set[i].quiet_until;
            if (t < next) next = t;
        }
        pfd[n_set] = (struct pollfd){.fd = wake_pipe[0], .events = POLLIN};
        int n = n_set;
        pthread_mutex_unlock(&lock);
        int wait_ms = next > now ? (int)((next - now) / 1000000u) + 1 : 0;
        (void)poll(pfd, (nfds_t)n + 1, wait_ms); /* EINTR: look again */
        char c[64];
        while (read(wake_pipe[0], c, sizeof c) > 0) {
        }
        pthread_mutex_lock(&lock);
        now = srv_now_ns();
        /* entries [0, n) are the ones polled (add appends), later ones arrived meanwhile */
        for (int i = 0; i < n; i++)
            if (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)) set[i].done = drain(&set[i], now);
        int kept = 0;
        for (int i = 0; i < n_set; i++) {
            if (set[i].done || now >= set[i].until || now >= set[i].quiet_until) close(set[i].fd);
            else set[kept++] = set[i];
        }
        n_set = kept;
    }
    for (int i = 0; i < n_set; i++) close(set[i].fd);
    n_set = 0;
    pthread_mutex_unlock(&lock);
    return NULL;
}

int srv_linger_start(void) {
    if (pipe2(wake_pipe, O_NONBLOCK | O_CLOEXEC)) return -1;
    stopping = 0;
    if (pthread_create(&thread, NULL, linger_main, NULL)) {
        close(wake_pipe[0]);
        close(wake_pipe[1]);
        wake_pipe[0] = wake_pipe[1] = -1;
        return -1;
    }
    started = 1;
    return 0;
}

void srv_linger_stop(void) {
    if (!started) return;
    pthread_mutex_lock(&lock);
    stopping = 1;
    pthread_mutex_unlock(&lock);
    ssize_t w = write(wake_pipe[1], "x", 1);
    (void)w;
    pthread_join(thread, NULL);
    close(wake_pipe[0]);
    close(wake_pipe[1]);
    wake_pipe[0] = wake_pipe[1] = -1;
    started = 0;
}

void srv_linger_add(int fd) {
    if (fd < 0) return;
    pthread_mutex_lock(&lock);
    if (!started || stopping || n_set == SRV_LINGER_MAX) {
        pthread_mutex_unlock(&lock);
        close(fd); /* no room: the client may see a reset, as without lingering */
        return;
    }
    uint64_t now = srv_now_ns();
    set[n_set++] = (struct lingering){.fd = fd, .until = now + (uint64_t)SRV_LINGER_MS * 1000000u,
                                      .quiet_until = now + (uint64_t)SRV_LINGER_IDLE_MS * 1000000u};
    pthread_mutex_unlock(&lock);
    ssize_t w = write(wake_pipe[1], "x", 1); /* a full pipe already wakes the thread */
    (void)w;
}

long srv_linger_count(void) {
    pthread_mutex_lock(&lock);
    long n = n_set;
    pthread_mutex_unlock(&lock);
    return n;
}
