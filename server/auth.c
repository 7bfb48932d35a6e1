/*
 * auth.c - constant-time Bearer key check.
 *
 * The comparison runs over the configured key's length whatever the guess is, folds the
 * length difference into the same accumulator, and never returns early, so response time
 * leaks neither a matching prefix nor which key matched.
 */
#include "auth.h"

#include <stddef.h>
#include <string.h>
#include <strings.h>

static int equal_ct(const char *key, const char *guess, size_t guess_len) {
    size_t key_len = strlen(key);
    volatile unsigned char diff = (unsigned char)(key_len != guess_len);
    for (size_t i = 0; i < key_len; i++) {
        unsigned char g = i < guess_len ? (unsigned char)guess[i] : 0;
        diff |= (unsigned char)(key[i] ^ g);
    }
    return diff == 0;
}

int srv_auth_check(const struct srv_strlist *keys, const char *authorization) {
    if (keys->n == 0) return 1;
    if (!authorization || strncasecmp(authorization, "Bearer ", 7) != 0) return 0;
    const char *guess = authorization + 7;
    while (*guess == ' ') guess++;
    size_t len = strlen(guess);
    while (len > 0 && (guess[len - 1] == ' ' || guess[len - 1] == '\t')) len--;
    int ok = 0;
    for (int i = 0; i < keys->n; i++) ok |= equal_ct(keys->items[i], guess, len);
    return ok;
}
