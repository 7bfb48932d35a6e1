#!/usr/bin/env bash
# The sampler parameter table (`edm params --json`, the engine's edm_sampler_param_table)
# against the documents written by hand that must follow it: the OpenAPI request schema, the
# web form and the fuzzer's dictionary (tests/server/params_check.py). The `edm` command and
# edmd's request parser read the table itself; their tests are test_cli.sh and test_units.sh.
set -u
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
TMP=$(mktemp -d /tmp/edm-params.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
if [ ! -x "$BUILD/edm" ]; then
    echo "SKIP: $BUILD/edm not built"
    echo "0 passed, 0 failed, 1 skipped"
    exit 0
fi
if ! "$BUILD/edm" params --json >"$TMP/table.json"; then
    echo "FAIL: edm params --json"
    echo "0 passed, 1 failed, 0 skipped"
    exit 1
fi
exec python3 tests/server/params_check.py "$TMP/table.json"
