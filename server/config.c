/*
 * config.c - option table, configuration file, EDMD_* environment and command-line flags.
 *
 * Like redis, one table is the single truth: adding an option is one row, and the file
 * parser, the environment, the flags, --help and --print-config all follow. The file syntax
 * is "name = value" per line, '#' starting a comment line; names are the long flag names.
 * config/edmd.conf documents every option.
 */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "edm.h"

#ifndef EDMD_VERSION
#define EDMD_VERSION EDM_VERSION
#endif

enum opt_type { OPT_STR, OPT_INT, OPT_DOUBLE, OPT_LIST };

struct opt {
    const char *name;
    enum opt_type type;
    size_t offset;
    const char *def;
    double min, max;
    int secret;
    const char *help;
};

#define F(field) offsetof(struct srv_config, field)
static const struct opt opts[] = {
    {"config", OPT_STR, F(config_path), "", 0, 0, 0,
     "configuration file (from a flag or EDMD_CONFIG only)"},
    {"model", OPT_LIST, F(models), "", 0, 0, 0,
     "model to serve, PATH or NAME=PATH; repeatable; the first is the default"},
    {"host", OPT_STR, F(host), "127.0.0.1", 0, 0, 0, "address to listen on"},
    {"port", OPT_INT, F(port), "8080", 0, 65535, 0, "TCP port (0: any free port)"},
    {"port-file", OPT_STR, F(port_file), "", 0, 0, 0,
     "write the bound port to this file once listening"},
    {"public-url", OPT_STR, F(public_url), "", 0, 0, 0,
     "the URL clients reach edmd at (image URLs, OpenAPI servers); empty: from each request's Host "
     "and X-Forwarded-*"},
    {"backend", OPT_STR, F(backend), "auto", 0, 0, 0,
     "compute backend: auto (the first with a device), cpu or cuda"},
    {"devices", OPT_STR, F(devices), "0", 0, 0, 0,
     "device ordinals of the backend, comma-separated; one worker each (cpu: one device, 0)"},
    {"precision", OPT_STR, F(precision), "fp32", 0, 0, 0, "fp32, tf32, fp16 or bf16 (CUDA)"},
    {"compute-threads", OPT_INT, F(compute_threads), "0", 0, 4096, 0,
     "CPU backend threads (0: all cores)"},
    {"max-batch", OPT_INT, F(max_batch), "32", 1, 4096, 0,
     "images per network evaluation (continuous batching)"},
    {"max-queue", OPT_INT, F(max_queue), "256", 1, 1000000, 0,
     "requests waiting for the worker before 429"},
    {"threads", OPT_INT, F(threads), "4", 1, 1024, 0, "HTTP threads"},
    {"encode-threads", OPT_INT, F(encode_threads), "2", 1, 1024, 0, "PNG encoder threads"},
    {"max-n", OPT_INT, F(max_n), "16", 1, 100000, 0, "most images per request"},
    {"max-steps", OPT_INT, F(max_steps), "1000", 2, 1000000, 0, "most sampler steps"},
    {"max-body", OPT_INT, F(max_body), "1048576", 64, 1073741824, 0,
     "largest request body in bytes (413 above)"},
    {"timeout-ms", OPT_INT, F(timeout_ms), "600000", 1, 86400000, 0,
     "deadline of a request without timeout_ms (504 after it)"},
    {"max-timeout-ms", OPT_INT, F(max_timeout_ms), "3600000", 1, 86400000, 0,
     "largest timeout_ms a request may ask for"},
    {"job-ttl", OPT_DOUBLE, F(job_ttl_s), "600", 0, 1e9, 0,
     "seconds a finished asynchronous job stays readable"},
    {"max-jobs", OPT_INT, F(max_jobs), "4096", 1, 10000000, 0,
     "asynchronous jobs remembered; the oldest finished ones go first"},
    {"job-store", OPT_STR, F(job_store), "memory", 0, 0, 1,
     "where asynchronous jobs live: memory (this process) or redis://[:PASSWORD@]HOST[:PORT][/DB] (shared by replicas)"},
    {"job-store-password-file", OPT_STR, F(job_store_password_file), "", 0, 0, 0,
     "file whose first line is the Redis password (instead of one in the URL)"},
    {"job-lease", OPT_DOUBLE, F(job_lease_s), "30", 0.5, 3600, 0,
     "seconds a replica's claim on a Redis job lasts unless renewed; a dead replica's jobs rerun elsewhere after it"},
    {"ready-needs-job-store", OPT_INT, F(ready_needs_job_store), "0", 0, 1, 0,
     "1: /readyz is 503 whenever the job store (Redis) cannot be reached; 0: only until it was "
     "reached once (a misconfigured replica stays out), then an outage leaves the replica ready "
     "for synchronous work and /readyz names it"},
    {"api-key", OPT_LIST, F(api_keys), "", 0, 0, 1,
     "accepted Bearer key; repeatable; none: no authentication"},
    {"api-key-file", OPT_STR, F(api_key_file), "", 0, 0, 0,
     "file of accepted keys, one per line ('#' comments)"},
    {"cors-origin", OPT_LIST, F(cors_origins), "", 0, 0, 0,
     "browser origin allowed by CORS; repeatable; '*' any; none: CORS off"},
    {"drain-timeout", OPT_DOUBLE, F(drain_timeout_s), "30", 0, 1e6, 0,
     "seconds SIGTERM waits for work in flight and unread job results"},
    {"connection-timeout", OPT_INT, F(connection_timeout_s), "60", 1, 86400, 0,
     "seconds an idle or slow connection may take"},
    {"connection-limit", OPT_INT, F(connection_limit), "1024", 1, 1000000, 0,
     "most simultaneous connections"},
    {"per-ip-connection-limit", OPT_INT, F(per_ip_connection_limit), "256", 0, 1000000, 0,
     "most simultaneous connections from one client address (0: no limit; behind a balancer "
     "all its clients share its addresses)"},
    {"header-timeout", OPT_DOUBLE, F(header_timeout_s), "10", 0, 86400, 0,
     "seconds a connection has to send a request's headers, from its opening or its previous "
     "response, however often bytes arrive (0: no limit)"},
    {"body-timeout", OPT_DOUBLE, F(body_timeout_s), "30", 0, 86400, 0,
     "seconds a request has to send its body once its headers are in (0: no limit)"},
    {"admin-host", OPT_STR, F(admin_host), "", 0, 0, 0,
     "address of the admin listener (/healthz, /readyz, /metrics); empty: the host option's"},
    {"admin-port", OPT_INT, F(admin_port), "-1", -1, 65535, 0,
     "TCP port of the admin listener, with its own small connection budget (-1: off; 0: any "
     "free port)"},
    {"admin-port-file", OPT_STR, F(admin_port_file), "", 0, 0, 0,
     "write the admin listener's bound port to this file once listening"},
    {"png-level", OPT_INT, F(png_level), "1", 0, 9, 0, "zlib level of the PNGs (1: fast)"},
    {"retry-after", OPT_INT, F(retry_after_s), "1", 0, 3600, 0,
     "seconds in Retry-After of 429 and 503 answers"},
    {"sse-keepalive", OPT_DOUBLE, F(sse_keepalive_s), "15", 0.05, 3600, 0,
     "seconds between keep-alive comments of an idle event stream"},
    {"access-log", OPT_STR, F(access_log), "-", 0, 0, 0,
     "access log: '-' standard error, 'off', or a file (appended)"},
};
#undef F
#define N_OPTS ((int)(sizeof opts / sizeof opts[0]))

enum source { SRC_DEFAULT, SRC_FILE, SRC_ENV, SRC_FLAG };

struct loader {
    struct srv_config *c;
    enum source list_source[N_OPTS];
    char *err;
    size_t err_size;
};

static void set_err(struct loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(struct loader *L, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(L->err, L->err_size, fmt, ap);
    va_end(ap);
}

static void list_clear(struct srv_strlist *l) {
    for (int i = 0; i < l->n; i++) free(l->items[i]);
    free(l->items);
    l->items = NULL;
    l->n = 0;
}

static int list_push(struct srv_strlist *l, const char *s) {
    char *copy = strdup(s);
    char **items = copy ? realloc(l->items, sizeof *items * (size_t)(l->n + 1)) : NULL;
    if (!items) {
        free(copy);
        return -1;
    }
    items[l->n++] = copy;
    l->items = items;
    return 0;
}

static const struct opt *opt_find(const char *name, size_t len) {
    for (int i = 0; i < N_OPTS; i++)
        if (strlen(opts[i].name) == len && strncmp(opts[i].name, name, len) == 0) return &opts[i];
    return NULL;
}

/* Applies one value. where: "config/edmd.conf:12", "EDMD_PORT" or "--port". */
static int opt_apply(struct loader *L, const struct opt *o, const char *value, enum source src,
                     const char *where) {
    void *field = (char *)L->c + o->offset;
    switch (o->type) {
    case OPT_STR: {
        char *copy = strdup(value);
        if (!copy) goto nomem;
        free(*(char **)field);
        *(char **)field = copy;
        return 0;
    }
    case OPT_INT: {
        errno = 0;
        char *end;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < (long long)o->min || v > (long long)o->max) {
            set_err(L, "%s: expected an integer in [%.0f, %.0f], got '%s'", where, o->min,
                    o->max, value);
            return -1;
        }
        *(long *)field = (long)v;
        return 0;
    }
    case OPT_DOUBLE: {
        errno = 0;
        char *end;
        double v = strtod(value, &end);
        if (errno || end == value || *end || !isfinite(v) || v < o->min || v > o->max) {
            set_err(L, "%s: expected a number in [%g, %g], got '%s'", where, o->min, o->max,
                    value);
            return -1;
        }
        *(double *)field = v;
        return 0;
    }
    case OPT_LIST: {
        struct srv_strlist *l = field;
        int idx = (int)(o - opts);
        if (L->list_source[idx] != src) { /* a higher source replaces, not extends */
            list_clear(l);
            L->list_source[idx] = src;
        }
        if (src == SRC_ENV) { /* lists in one variable: comma-separated */
            const char *p = value;
            while (*p) {
                const char *q = strchr(p, ',');
                size_t n = q ? (size_t)(q - p) : strlen(p);
                char *item = strndup(p, n);
                if (!item) goto nomem;
                int rc = n ? list_push(l, item) : 0;
                free(item);
                if (rc) goto nomem;
                p += n + (q ? 1 : 0);
            }
            return 0;
        }
        if (!*value) {
            set_err(L, "%s: empty value", where);
            return -1;
        }
        if (list_push(l, value)) goto nomem;
        return 0;
    }
    }
    return 0;
nomem:
    set_err(L, "%s: out of memory", where);
    return -1;
}

static char *trim(char *s) {
    while (isspace((unsigned char)*s)) s++;
    size_t n = strlen(s);
    while (n > 0 && isspace((unsigned char)s[n - 1])) s[--n] = '\0';
    return s;
}

static int load_file(struct loader *L, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(L, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char line[4096];
    int lineno = 0, rc = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        char where[512];
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        if (!strchr(line, '\n') && !feof(f)) {
            set_err(L, "%s: line too long", where);
            rc = -1;
            break;
        }
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        char *eq = strchr(s, '=');
        if (!eq) {
            set_err(L, "%s: expected 'name = value'", where);
            rc = -1;
            break;
        }
        *eq = '\0';
        char *name = trim(s), *value = trim(eq + 1);
        const struct opt *o = opt_find(name, strlen(name));
        if (!o || o->offset == offsetof(struct srv_config, config_path)) {
            set_err(L, "%s: unknown option '%s'", where, name);
            rc = -1;
            break;
        }
        if (opt_apply(L, o, value, SRC_FILE, where)) {
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

static void env_name(const struct opt *o, char *out, size_t size) {
    size_t k = (size_t)snprintf(out, size, "EDMD_");
    for (const char *p = o->name; *p && k + 1 < size; p++)
        out[k++] = *p == '-' ? '_' : (char)toupper((unsigned char)*p);
    out[k] = '\0';
}

static int load_env(struct loader *L) {
    for (int i = 0; i < N_OPTS; i++) {
        char name[64];
        env_name(&opts[i], name, sizeof name);
        const char *v = getenv(name);
        if (!v || opts[i].offset == offsetof(struct srv_config, config_path)) continue;
        if (opt_apply(L, &opts[i], v, SRC_ENV, name)) return -1;
    }
    return 0;
}

static int read_key_file(struct loader *L, const char *path) {
    FILE *f = fopen(path, "r");
    if (!f) {
        set_err(L, "api-key-file %s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    char line[1024];
    int rc = 0;
    while (fgets(line, sizeof line, f)) {
        char *s = trim(line);
        if (!*s || *s == '#') continue;
        if (list_push(&L->c->api_keys, s)) {
            set_err(L, "api-key-file: out of memory");
            rc = -1;
            break;
        }
    }
    fclose(f);
    return rc;
}

void srv_config_init(struct srv_config *c) {
    memset(c, 0, sizeof *c);
    struct loader L = {.c = c, .err = NULL, .err_size = 0};
    char dummy[8];
    L.err = dummy;
    L.err_size = sizeof dummy;
    for (int i = 0; i < N_OPTS; i++) {
        if (opts[i].type == OPT_LIST) continue;
        int bad_default = opt_apply(&L, &opts[i], opts[i].def, SRC_DEFAULT, opts[i].name);
        EDM_ASSERT(bad_default == 0); /* defaults are constants of this file */
    }
}

void srv_config_clear(struct srv_config *c) {
    for (int i = 0; i < N_OPTS; i++) {
        void *field = (char *)c + opts[i].offset;
        if (opts[i].type == OPT_STR) free(*(char **)field);
        if (opts[i].type == OPT_LIST) list_clear(field);
    }
    memset(c, 0, sizeof *c);
}

void srv_config_usage(FILE *f) {
    fprintf(f, "usage: edmd [--config FILE] [--model [NAME=]PATH]... [options]\n\n"
               "Serves EDM diffusion models over HTTP (see /openapi.json).\n"
               "Every option is also a config-file key and an EDMD_* variable "
               "(--max-batch = max-batch = EDMD_MAX_BATCH);\n"
               "flags override the environment, which overrides the file.\n\n");
    for (int i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        char lhs[64];
        snprintf(lhs, sizeof lhs, "--%s %s", o->name,
                 o->type == OPT_INT ? "N" : o->type == OPT_DOUBLE ? "X" : "S");
        fprintf(f, "  %-26s %s", lhs, o->help);
        if (o->def[0]) fprintf(f, " [%s]", o->def);
        fputc('\n', f);
    }
    fprintf(f, "  %-26s %s\n  %-26s %s\n  %-26s %s\n", "--print-config",
            "print the effective configuration and exit", "--version", "print the version",
            "-h, --help", "this text");
}

void srv_config_print(const struct srv_config *c, FILE *f) {
    fprintf(f, "# effective edmd configuration\n");
    for (int i = 0; i < N_OPTS; i++) {
        const struct opt *o = &opts[i];
        const void *field = (const char *)c + o->offset;
        switch (o->type) {
        case OPT_STR: {
            const char *v = *(char *const *)field ? *(char *const *)field : "";
            /* a secret string is a URL: its password is printed as ******** */
            const char *scheme = o->secret ? strstr(v, "://") : NULL, *at = scheme ? strchr(scheme, '@') : NULL;
            if (at) fprintf(f, "%s = %.*s********%s\n", o->name, (int)(scheme + 3 - v), v, at);
            else fprintf(f, "%s = %s\n", o->name, v);
            break;
        }
        case OPT_INT: fprintf(f, "%s = %ld\n", o->name, *(const long *)field); break;
        case OPT_DOUBLE: fprintf(f, "%s = %g\n", o->name, *(const double *)field); break;
        case OPT_LIST: {
            const struct srv_strlist *l = field;
            for (int k = 0; k < l->n; k++)
                fprintf(f, "%s = %s\n", o->name, o->secret ? "********" : l->items[k]);
            if (l->n == 0) fprintf(f, "# %s (none)\n", o->name);
            break;
        }
        }
    }
}

enum srv_config_result srv_config_load(struct srv_config *c, int argc, char **argv, char *err,
                                       size_t err_size) {
    struct loader L = {.c = c, .err = err, .err_size = err_size};
    const struct opt *config_opt = &opts[0];
    int print = 0;
    err[0] = '\0';

    /* The file comes first in precedence order, so find its name before anything else. */
    const char *path = getenv("EDMD_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0) path = argv[i] + 9;
    }
    if (path && *path) {
        if (opt_apply(&L, config_opt, path, SRC_FLAG, "--config")) return SRV_CONFIG_ERROR;
        if (load_file(&L, path)) return SRV_CONFIG_ERROR;
    }
    if (load_env(&L)) return SRV_CONFIG_ERROR;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            srv_config_usage(stdout);
            return SRV_CONFIG_EXIT_OK;
        }
        if (strcmp(a, "--version") == 0) {
            printf("edmd %s\n", EDMD_VERSION);
            return SRV_CONFIG_EXIT_OK;
        }
        if (strcmp(a, "--print-config") == 0) {
            print = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0) {
            set_err(&L, "unexpected argument '%s' (see --help)", a);
            return SRV_CONFIG_ERROR;
        }
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        const struct opt *o = opt_find(name, len);
        if (!o) {
            set_err(&L, "unknown option '%.*s' (see --help)", (int)len + 2, a);
            return SRV_CONFIG_ERROR;
        }
        const char *value;
        if (eq) {
            value = eq + 1;
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            set_err(&L, "--%s needs a value", o->name);
            return SRV_CONFIG_ERROR;
        }
        char where[80];
        snprintf(where, sizeof where, "--%s", o->name);
        if (o != config_opt && opt_apply(&L, o, value, SRC_FLAG, where)) return SRV_CONFIG_ERROR;
    }

    if (c->api_key_file && *c->api_key_file && read_key_file(&L, c->api_key_file))
        return SRV_CONFIG_ERROR;
    if (c->timeout_ms > c->max_timeout_ms) {
        set_err(&L, "timeout-ms (%ld) exceeds max-timeout-ms (%ld)", c->timeout_ms,
                c->max_timeout_ms);
        return SRV_CONFIG_ERROR;
    }
    if (c->public_url && *c->public_url && strncmp(c->public_url, "http://", 7) != 0 &&
        strncmp(c->public_url, "https://", 8) != 0) {
        set_err(&L, "public-url '%s' must start with http:// or https://", c->public_url);
        return SRV_CONFIG_ERROR;
    }
    if (print) {
        srv_config_print(c, stdout);
        return SRV_CONFIG_EXIT_OK;
    }
    return SRV_CONFIG_OK;
}
