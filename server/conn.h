/*
 * conn.h - every open connection of both listeners, with the deadlines that MHD's idle
 * timeout cannot give: the request's headers must be complete within header-timeout of the
 * moment the server starts waiting for them (the connection opened, or the previous
 * response on it ended), and its body within body-timeout of the headers; however often
 * bytes arrive. A connection past its deadline is shut down from the housekeeping tick.
 *
 * MHD 0.9.75 has no call that closes a connection from outside its thread, and a
 * connection that has sent no complete header yet has no request to answer. So the tick
 * shuts the socket down (shutdown(2), both directions): MHD's next read sees end of file
 * and closes the connection itself, in its own thread, as if the client had left. The fd
 * stays valid meanwhile because MHD reports the connection closed (srv_conn_notify) before
 * it closes the fd, and both happen under this module's lock.
 *
 * Ownership: a struct srv_conn is the MHD socket context of its connection, made when MHD
 * reports it started and freed when MHD reports it closed; a request borrows it.
 */
#ifndef SRV_CONN_H
#define SRV_CONN_H

#include <microhttpd.h>

struct srv_conn;

enum srv_conn_phase {
    SRV_CONN_HEADERS, /* waiting for a request's headers: header-timeout runs */
    SRV_CONN_BODY,    /* headers in, body arriving: body-timeout runs */
    SRV_CONN_BUSY,    /* the request is complete (handled, parked, or being answered) */
};

/* The deadlines in seconds (0: none); set before the listeners start. */
void srv_conn_configure(double header_timeout_s, double body_timeout_s);

/* MHD_OPTION_NOTIFY_CONNECTION of the API listener and of the admin listener. */
void srv_conn_notify_api(void *cls, struct MHD_Connection *c, void **socket_context,
                         enum MHD_ConnectionNotificationCode code);
void srv_conn_notify_admin(void *cls, struct MHD_Connection *c, void **socket_context,
                           enum MHD_ConnectionNotificationCode code);

/* The connection's record (a borrowed pointer valid until MHD reports it closed). */
struct srv_conn *srv_conn_of(struct MHD_Connection *c);
int srv_conn_is_admin(const struct srv_conn *k);
/* Moves the connection to a phase; SRV_CONN_HEADERS and SRV_CONN_BODY start their clocks. */
void srv_conn_set_phase(struct srv_conn *k, enum srv_conn_phase phase);
/* Whether a deadline shut the connection down (its request, if any, got no answer). */
int srv_conn_timed_out(struct srv_conn *k);

/* Shuts down every connection past its deadline (the housekeeping tick). */
void srv_conn_enforce(void);
/* Open connections of the API and the admin listener. */
void srv_conn_counts(long *api, long *admin);

#endif /* SRV_CONN_H */
