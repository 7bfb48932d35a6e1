/*
 * sha256.h - SHA-256 (FIPS 180-4): the identity of model files, and of init images and masks
 * in the PNG text (edm_sha256_hex is also public, in include/edm.h).
 *
 * A model is named in every PNG it makes by the SHA-256 of its file, the digest that model
 * hubs print next to a download, so a reader can tell which file made an image.
 */
#ifndef EDM_SHA256_H
#define EDM_SHA256_H

#include <stddef.h>
#include <stdint.h>

/* The digest of data[0..len) as 64 lower-case hex digits and a NUL. */
void edm_sha256_hex(const void *data, size_t len, char hex[65]);

#endif /* EDM_SHA256_H */
