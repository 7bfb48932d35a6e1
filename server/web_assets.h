/*
 * web_assets.h - the web page (server/web/), compiled into edmd at build time by tools/embed
 * ($(BUILD)/gen/web_assets.c): one row per file, path "/name", NUL-terminated data.
 */
#ifndef SRV_WEB_ASSETS_H
#define SRV_WEB_ASSETS_H

#include <stddef.h>

struct srv_asset {
    const char *path, *content_type;
    const unsigned char *data;
    size_t len;
};

extern const struct srv_asset srv_assets[];
extern const size_t srv_assets_count;

#endif /* SRV_WEB_ASSETS_H */
