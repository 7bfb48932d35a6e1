#!/bin/sh
# Run once in each runtime stage of the Dockerfile (CPU and CUDA): the shared libraries
# edmd and edm link (the -dev packages' runtime halves), curl for the HEALTHCHECK, and the
# unprivileged user the container runs as.
set -eu
apt-get update
apt-get install -y --no-install-recommends \
    libjansson4 libpng16-16 libopenblas0-pthread libdnnl2 libmicrohttpd12 libhiredis0.14 libgomp1 \
    curl ca-certificates
rm -rf /var/lib/apt/lists/*
groupadd --system --gid 10001 edm
useradd --system --uid 10001 --gid edm --home-dir /nonexistent --shell /usr/sbin/nologin edm
