/*
 * linger.h - lingering close: after an answer sent before the request's body was read (a
 * 413 for a body past max-body, a 401, a framing error), keep reading and discarding what
 * the client still sends, for a bounded time and size, before the socket is closed.
 *
 * Why: many clients (Python's http.client, most HTTP libraries without Expect:
 * 100-continue) write the whole body before they read anything. Closing a socket with
 * unread data makes the kernel send a reset, so such a client fails its write with a broken
 * pipe and never reads the answer that is already waiting for it. nginx does the same
 * (lingering_close).
 *
 * How, with MHD 0.9.75, which closes such a connection itself right after the answer: the
 * request's completion callback hands over a duplicate of the socket (srv_linger_add);
 * MHD then shuts the write side (the client sees the answer and the end of it) and closes
 * its own descriptor, which leaves the socket open through the duplicate. One thread reads
 * and drops what arrives until the client closes, or goes quiet for SRV_LINGER_IDLE_MS, or
 * SRV_LINGER_MS or SRV_DISCARD_MAX_BYTES have passed; at most SRV_LINGER_MAX sockets
 * linger at once (more are closed at once).
 */
#ifndef SRV_LINGER_H
#define SRV_LINGER_H

#include <stddef.h>

#define SRV_LINGER_MS 10000                 /* the longest a socket lingers */
#define SRV_LINGER_IDLE_MS 2000             /* ... or waits for the next byte */
#define SRV_LINGER_MAX 256                  /* sockets lingering at once */
#define SRV_DISCARD_MAX_BYTES ((size_t)64 << 20) /* the most of an unwanted body read and dropped
                                                   (lingering, or by MHD past max-body) */

/* Starts / stops the lingering thread (stop closes what still lingers). */
int srv_linger_start(void);
void srv_linger_stop(void);
/* Takes ownership of fd, a duplicate of a connection's socket, and closes it once the
 * client is done sending (or the bounds are reached). */
void srv_linger_add(int fd);
/* Sockets lingering now. */
long srv_linger_count(void);

#endif /* SRV_LINGER_H */
