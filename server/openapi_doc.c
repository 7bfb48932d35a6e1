/*
 * openapi_doc.c - embeds server/openapi.json with the assembler's .incbin.
 *
 * The JSON file in the repository is the one truth: tests/server/test_openapi.sh checks
 * that GET /openapi.json returns it (with its servers entry set to the address the client
 * used, api_status.c) and validates real responses against its schemas. The path is relative to the
 * repository root, where make runs the compiler. (Make does not know this object depends on the
 * JSON file; the test above catches a stale build, and the Makefile can name the dependency.)
 */
#include "openapi_doc.h"

__asm__(".section .rodata\n"
        ".balign 16\n"
        "srv_openapi_begin:\n"
        ".incbin \"server/openapi.json\"\n"
        "srv_openapi_end:\n"
        ".byte 0\n"
        ".previous\n");

extern const char srv_openapi_begin[], srv_openapi_end[];

const char *srv_openapi_text(void) { return srv_openapi_begin; }
size_t srv_openapi_len(void) { return (size_t)(srv_openapi_end - srv_openapi_begin); }
