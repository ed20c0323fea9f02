# syntax=docker/dockerfile:1
# foundry-operator image: `docker build -t foundry-operator:dev .` (or `make image`).
#
# Two stages: the first builds wheels for the project and every dependency; the last (the default
# target) installs only the operator's wheels into a clean slim Python, so no compiler, build backend, pip cache or source
# tree reaches the final image. Pin PYTHON_IMAGE by digest in your release pipeline (Renovate or
# Dependabot keep it fresh); the tag below names the exact minor line the project supports.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
WORKDIR /src
# Only what the wheel is built from (.dockerignore keeps the rest of the repository out).
COPY pyproject.toml README.md ./
COPY operator/ ./operator/
COPY client/ ./client/
# Every dependency ships manylinux wheels for CPython 3.11 (amd64 and arm64), so no compiler is
# installed; a dependency that needed one would fail this step loudly rather than silently grow
# the image.
RUN pip wheel . ./operator ./client --wheel-dir /wheels

# `make e2e` only, never released: the operator plus the Azure emulator distribution
# (operator/pyproject.toml), which the production stage below leaves out.
FROM ${PYTHON_IMAGE} AS emulator
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels foundry-operator-emulator
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp TMPDIR=/tmp
WORKDIR /tmp
USER 65532:65532
ENTRYPOINT ["foundry-operator", "emulator"]

FROM ${PYTHON_IMAGE}
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG CREATED=unknown
LABEL org.opencontainers.image.title="foundry-operator" \
      org.opencontainers.image.description="Kubernetes operator that places Azure AI Foundry model deployments where the model is offered and publishes them to llm-config" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.created="${CREATED}" \
      org.opencontainers.image.licenses="MIT" \
      org.opencontainers.image.source="https://github.com/foundry-operator/foundry-operator" \
      org.opencontainers.image.url="https://github.com/foundry-operator/foundry-operator" \
      org.opencontainers.image.documentation="https://github.com/foundry-operator/foundry-operator/tree/main/docs" \
      org.opencontainers.image.vendor="foundry-operator developers"

# A passwd entry for the numeric user: kopf's peer identity falls back to getpass.getuser(), which
# needs one (the chart sets POD_ID, but a bare `docker run` must work too). No home directory:
# HOME points at /tmp, the only writable path when the root filesystem is read-only.
RUN groupadd --system --gid 65532 nonroot \
 && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
            --shell /usr/sbin/nologin nonroot

# Install from the build stage's wheels only (bind-mounted, so they are not copied into a layer),
# then remove pip and setuptools: nothing installs packages at run time.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-cache-dir --no-index --find-links=/wheels foundry-operator \
 && python -m pip uninstall --yes pip setuptools wheel \
 && rm -rf /root/.cache

# PYTHONDONTWRITEBYTECODE: the root filesystem is read-only in the cluster (pip compiled the
# installed modules' .pyc at install time). PYTHONUNBUFFERED: log lines reach `kubectl logs` at once.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    TMPDIR=/tmp

WORKDIR /tmp
USER 65532:65532
# 8080: kopf's /healthz (--liveness); 9090: Prometheus /metrics (--metrics-port).
EXPOSE 8080 9090
ENTRYPOINT ["foundry-operator", "run"]
# The chart passes its own arguments; these are the defaults for a plain `docker run` with a kubeconfig.
CMD ["--all-namespaces", "--standalone", "--liveness=http://0.0.0.0:8080/healthz"]
