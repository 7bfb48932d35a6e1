/*
 * openapi_doc.h - the OpenAPI 3.1 description (server/openapi.json), built into the binary.
 */
#ifndef SRV_OPENAPI_DOC_H
#define SRV_OPENAPI_DOC_H

#include <stddef.h>

const char *srv_openapi_text(void);
size_t srv_openapi_len(void);

#endif /* SRV_OPENAPI_DOC_H */
