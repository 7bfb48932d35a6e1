#!/usr/bin/env bash
# nginx + three edmd replicas sharing a Redis job store, under drain, kill -9 and restart,
# with async jobs in flight through all of it: see deploy/local/test.sh (EDM_LB_STORE=redis).
EDM_LB_STORE=redis exec bash "$(dirname "$0")/../../deploy/local/test.sh"
