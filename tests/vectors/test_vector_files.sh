#!/usr/bin/env bash
# Integrity of the committed reference vectors and tools/edmfile.py (numpy only).
# Last line: "N passed, N failed, N skipped".
set -u
cd "$(dirname "$0")/../.."
for c in ${PYTHON:-} /usr/bin/python3 python3; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import numpy' >/dev/null 2>&1; then
        exec "$c" tests/vectors/check_files.py
    fi
done
echo "SKIP no python3 with numpy"
echo "0 passed, 0 failed, 1 skipped"
