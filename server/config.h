/*
 * config.h - the daemon's options: one table drives the configuration file, the EDMD_*
 * environment variables, the command-line flags, --help and --print-config.
 *
 * Precedence, lowest first: built-in defaults < the file (--config PATH or EDMD_CONFIG) <
 * EDMD_* environment < command-line flags. A repeatable option (model, api-key, cors-origin)
 * set by a higher source replaces the whole list of a lower one.
 *
 * Ownership: srv_config owns every string in it; free with srv_config_clear.
 */
#ifndef SRV_CONFIG_H
#define SRV_CONFIG_H

#include <stddef.h>
#include <stdio.h>

struct srv_strlist {
    char **items;
    int n;
};

struct srv_config {
    char *config_path;
    struct srv_strlist models; /* "PATH" or "NAME=PATH"; the first is the default model */
    char *host;
    long port;
    char *port_file;
    char *public_url; /* "" : built from each request (public_url.c) */
    char *backend, *devices, *precision;
    long compute_threads;
    long max_batch, max_queue, threads, encode_threads;
    long max_n, max_steps, max_body;
    long timeout_ms, max_timeout_ms;
    double job_ttl_s;
    long max_jobs;
    char *job_store, *job_store_password_file;
    double job_lease_s;
    int ready_needs_job_store;
    struct srv_strlist api_keys;
    char *api_key_file;
    struct srv_strlist cors_origins;
    double drain_timeout_s;
    long connection_timeout_s, connection_limit;
    long per_ip_connection_limit;
    double header_timeout_s, body_timeout_s;
    char *admin_host;
    long admin_port; /* -1: no admin listener */
    char *admin_port_file;
    long png_level;
    long retry_after_s;
    double sse_keepalive_s;
    char *access_log;
};

enum srv_config_result { SRV_CONFIG_OK, SRV_CONFIG_EXIT_OK, SRV_CONFIG_ERROR };

/* Fills c with the defaults. */
void srv_config_init(struct srv_config *c);
void srv_config_clear(struct srv_config *c);

/* Reads the file, the environment and argv (argv[0] skipped) into c, then the API key file.
 * SRV_CONFIG_EXIT_OK: --help/--version/--print-config was answered on stdout.
 * SRV_CONFIG_ERROR: err names the source and the option (file:line, EDMD_X or --x). */
enum srv_config_result srv_config_load(struct srv_config *c, int argc, char **argv, char *err,
                                       size_t err_size);

/* Writes the effective configuration in the file's syntax (API keys masked). */
void srv_config_print(const struct srv_config *c, FILE *f);
void srv_config_usage(FILE *f);

#endif /* SRV_CONFIG_H */
