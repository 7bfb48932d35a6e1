/*
 * access_log.h - one structured (JSON) line per HTTP request.
 */
#ifndef SRV_ACCESS_LOG_H
#define SRV_ACCESS_LOG_H

#include <stddef.h>

struct srv_access_entry {
    const char *remote, *method, *path, *request_id, *job_id, *error, *termination;
    int status;
    size_t bytes;
    double duration_ms;
};

/* where: "-" standard error, "off" nothing, else a file opened for appending.
 * Returns 0, or -1 when the file cannot be opened. */
int srv_access_log_open(const char *where);
void srv_access_log_close(void);
void srv_access_log_write(const struct srv_access_entry *e);

#endif /* SRV_ACCESS_LOG_H */
