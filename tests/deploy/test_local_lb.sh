#!/usr/bin/env bash
# nginx + three edmd replicas under drain, crash and restart: see deploy/local/test.sh.
exec bash "$(dirname "$0")/../../deploy/local/test.sh"
