# syntax=docker/dockerfile:1
#
# edm-serve container image: edmd with the bundled model.
#
#   docker build -t edm-serve:cuda .                 CUDA build on the CUDA runtime (default, last stage)
#   docker build --target cpu -t edm-serve:cpu .     CPU-only build on Debian (no CUDA image pulled)
#   docker run --gpus all -p 8080:8080 edm-serve:cuda
#
# Configuration is by EDMD_* environment variables (every edmd option has one:
# --max-batch = EDMD_MAX_BATCH), by a file (EDMD_CONFIG=/etc/edmd/edmd.conf, e.g. a mounted
# ConfigMap), or by flags appended to `docker run IMAGE`. The entrypoint is the exec form,
# so edmd is PID 1 and receives SIGTERM itself: `docker stop -t 40` drains (see
# deploy/README.md). The CPU stages come first so that `--target cpu` never touches a CUDA
# stage, even with the legacy builder.
#
# tests/deploy/test_dockerfile.sh lints this file without a Docker engine: every COPY source
# exists and survives .dockerignore, every flag and EDMD_* variable is a real edmd option,
# each build stage runs Makefile targets that exist and copies what they produce.
# tests/deploy/test_container.sh builds `--target cpu` for real with podman (a debootstrap root
# imported as debian:bookworm-slim) and serves from the image's filesystem.

ARG CUDA_VERSION=12.6.3
ARG UBUNTU_VERSION=22.04
ARG DEBIAN_VERSION=bookworm

# ---------------------------------------------------------------------------------------
# CPU build: Debian's toolchain and libraries, the build set of deps/debian.txt (the list that
# make and .ci/run read too).
FROM debian:${DEBIAN_VERSION}-slim AS build-cpu
COPY deps/ /tmp/deps/
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(sh /tmp/deps/ensure.sh --list build) \
 && rm -rf /var/lib/apt/lists/* /tmp/deps
WORKDIR /src
# The sources are what .dockerignore lets through (Makefile, deps/, include/, core/, server/,
# tools/edm/, tools/embed/, server/web/); tests/deploy checks that make needs nothing else.
COPY . .
RUN make CUDA=0 BUILD=build -j"$(nproc)" build/edmd build/edm

# ---------------------------------------------------------------------------------------
# CPU runtime: `docker build --target cpu`.
FROM debian:${DEBIAN_VERSION}-slim AS cpu
COPY deploy/docker/runtime-setup.sh /tmp/runtime-setup.sh
RUN sh /tmp/runtime-setup.sh && rm /tmp/runtime-setup.sh
COPY --from=build-cpu /src/build/edmd /src/build/edm /usr/local/bin/
COPY models/ /opt/edm-serve/models/
COPY deploy/docker/edmd.conf /etc/edmd/edmd.conf
# The file holds the container defaults (host, port, model, drain); EDMD_* variables and
# flags override it. EDMD_BACKEND is per image, so it is the one option set here.
ENV EDMD_CONFIG=/etc/edmd/edmd.conf \
    EDMD_BACKEND=cpu
USER 10001:10001
WORKDIR /opt/edm-serve
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# on the admin listener (deploy/docker/edmd.conf): a flood of 8080 cannot make it fail
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS --max-time 2 "http://127.0.0.1:${EDMD_ADMIN_PORT:-9090}/healthz" >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/edmd"]

# ---------------------------------------------------------------------------------------
# CUDA build: the toolkit image (nvcc, cuBLAS headers and libraries).
# The build set of deps/debian.txt has the same names on Ubuntu.
FROM nvidia/cuda:${CUDA_VERSION}-devel-ubuntu${UBUNTU_VERSION} AS build-cuda
COPY deps/ /tmp/deps/
RUN apt-get update \
 && apt-get install -y --no-install-recommends $(sh /tmp/deps/ensure.sh --list build) \
 && rm -rf /var/lib/apt/lists/* /tmp/deps
WORKDIR /src
# The sources are what .dockerignore lets through (Makefile, deps/, include/, core/, server/,
# tools/edm/, tools/embed/, server/web/); tests/deploy checks that make needs nothing else.
COPY . .
# CUDA=1 fails the build if nvcc is missing rather than silently building the CPU backend.
# CUDA_HOME names the version-independent link, which the runtime image has too (rpath).
RUN make CUDA=1 CUDA_HOME=/usr/local/cuda BUILD=build -j"$(nproc)" build/edmd build/edm

# ---------------------------------------------------------------------------------------
# CUDA runtime (default target): the matching runtime image carries cuBLAS/cuBLASLt; the
# binaries link cudart statically and find cuBLAS under /usr/local/cuda/lib64 (rpath).
FROM nvidia/cuda:${CUDA_VERSION}-runtime-ubuntu${UBUNTU_VERSION} AS cuda
COPY deploy/docker/runtime-setup.sh /tmp/runtime-setup.sh
RUN sh /tmp/runtime-setup.sh && rm /tmp/runtime-setup.sh
COPY --from=build-cuda /src/build/edmd /src/build/edm /usr/local/bin/
COPY models/ /opt/edm-serve/models/
COPY deploy/docker/edmd.conf /etc/edmd/edmd.conf
# The file holds the container defaults (host, port, model, drain); EDMD_* variables and
# flags override it. EDMD_BACKEND is per image, so it is the one option set here.
ENV EDMD_CONFIG=/etc/edmd/edmd.conf \
    EDMD_BACKEND=cuda \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
USER 10001:10001
WORKDIR /opt/edm-serve
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# on the admin listener (deploy/docker/edmd.conf): a flood of 8080 cannot make it fail
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD curl -fsS --max-time 2 "http://127.0.0.1:${EDMD_ADMIN_PORT:-9090}/healthz" >/dev/null || exit 1
ENTRYPOINT ["/usr/local/bin/edmd"]
