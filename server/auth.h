/*
 * auth.h - Bearer API keys.
 */
#ifndef SRV_AUTH_H
#define SRV_AUTH_H

#include "config.h"

/* 1 when no keys are configured, or the Authorization header is "Bearer <k>" for one of the
 * keys. Every key is compared, each in time that depends only on its own length, so the
 * answer's timing does not tell how much of a guess was right. */
int srv_auth_check(const struct srv_strlist *keys, const char *authorization);

#endif /* SRV_AUTH_H */
