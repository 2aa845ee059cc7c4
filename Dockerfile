# syntax=docker/dockerfile:1
# Diplofeed's image: one image for every role of the compose stack (`diplofeed migrate`,
# `diplofeed serve`, `diplofeed project`, and the ad-hoc `keys` and `verify` commands).
#
#   docker build -t diplofeed .
#
# Stage 1 builds wheels of the pinned dependencies (requirements.lock) and of the project;
# stage 2 installs only those wheels (--no-index: nothing unpinned can slip in) and runs as an
# unprivileged user. The healthcheck lives in docker-compose.yml, on the api service only: the
# same image also runs the one-shot migrate and the projector, which serve no HTTP.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# -- builder --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A compiler for any dependency that ships no wheel for the target platform. Not pinned: Debian
# drops superseded versions from its mirrors, and none of it reaches the runtime image.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /src

# Dependencies first, so a code change does not rebuild them.
COPY requirements.lock ./
RUN pip wheel --wheel-dir /wheels -r requirements.lock

# The project itself, built with a pinned build backend.
COPY pyproject.toml README.md ./
COPY events ./events
COPY projections ./projections
COPY service ./service
RUN pip install "setuptools==84.2.1" \
    && pip wheel --no-deps --no-build-isolation --wheel-dir /wheels .

# -- runtime --------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="diplofeed" \
      org.opencontainers.image.description="Event-sourced feed of diplomatic interactions"

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    DIPLOFEED_HOST=0.0.0.0 \
    DIPLOFEED_PORT=8000

# A fixed, unprivileged uid/gid (10001), no home, no login shell.
RUN groupadd --system --gid 10001 diplofeed \
    && useradd --system --uid 10001 --gid diplofeed --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin diplofeed

# Exactly the locked versions, from the builder's wheels only; the project without resolving
# again; then a consistency check. The wheels are bind-mounted, so they leave no layer behind.
RUN --mount=type=bind,from=builder,source=/wheels,target=/wheels \
    --mount=type=bind,source=requirements.lock,target=/tmp/requirements.lock \
    pip install --no-index --find-links=/wheels -r /tmp/requirements.lock \
    && pip install --no-index --no-deps /wheels/diplofeed-*.whl \
    && pip check

USER 10001:10001

EXPOSE 8000
ENTRYPOINT ["diplofeed"]
CMD ["serve"]
