/*
 * model_config.h - parsing and validating the edm_config JSON of a model file (spec 0).
 */
#ifndef EDM_MODEL_CONFIG_H
#define EDM_MODEL_CONFIG_H

#include <stddef.h>

#include "edm.h"

/* Parses the edm_config JSON text (untrusted) into cfg, checking every value's type and range.
 * Errors are EDM_EFORMAT with a message naming the field. */
enum edm_status edm_config_parse(const char *json, size_t len, edm_config *cfg, edm_error *err);

const char *edm_precond_name(enum edm_precond p);
const char *edm_arch_name(enum edm_arch a);

#endif /* EDM_MODEL_CONFIG_H */
