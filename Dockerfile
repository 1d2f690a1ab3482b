# syntax=docker/dockerfile:1
#
# One image for every roomstreams service; the command picks the role:
#   docker run --rm --env-file .env roomstreams:dev python -m services.router
#   docker run --rm --env-file .env -p 7880:7880 roomstreams:dev python -m services.gateway
#
# No secret is ever baked in: ROOMSTREAMS_API_KEY / ROOMSTREAMS_API_SECRET come from
# the environment at run time (compose.yaml interpolates them from .env).
#
# All runtime dependencies ship manylinux (glibc) wheels, so the slim Debian image
# needs no compiler.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---------------------------------------------------------------------------
# builder: a self-contained virtualenv in /opt/venv, built from the project's
# own files only (see .dockerignore).
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:${PATH}"

WORKDIR /src

# Dependencies first, from pyproject.toml and the pins alone, so editing the source does
# not invalidate this (slow) layer. Only the services' set (pyproject.toml's `server`
# extra): no CLI, no bundled valkey-server, no bench tools. Every version is pinned by
# deploy/constraints.txt (regenerate it with deploy/constraints.sh).
COPY pyproject.toml README.md ./
COPY deploy/constraints.txt /tmp/constraints.txt
RUN python -c "import tomllib; deps = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']['server']; open('/tmp/requirements.txt', 'w').write('\n'.join(deps) + '\n')" \
 && pip install -r /tmp/requirements.txt -c /tmp/constraints.txt

# Then the project itself (packages shared/roomstreams -> roomstreams, and services),
# installed as a regular (non-editable) wheel into the venv. The import check runs
# with -I so it sees the venv, not ./services in this directory.
COPY shared/ shared/
COPY services/ services/
RUN pip install --no-deps . \
 && python -I -c "import roomstreams, services.router.__main__, services.gateway.__main__"

# ---------------------------------------------------------------------------
# runtime: the same base, the venv, a non-root user, nothing else.
# ---------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

LABEL org.opencontainers.image.title="roomstreams" \
      org.opencontainers.image.description="Realtime text streams between the participants of a room, over Redis Streams" \
      org.opencontainers.image.licenses="Apache-2.0"

RUN groupadd --system --gid 10001 roomstreams \
 && useradd --system --uid 10001 --gid roomstreams \
        --home-dir /nonexistent --no-create-home --shell /usr/sbin/nologin roomstreams

COPY --from=builder /opt/venv /opt/venv

ENV PATH="/opt/venv/bin:${PATH}" \
    VIRTUAL_ENV=/opt/venv \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ROOMSTREAMS_GATEWAY_HOST=0.0.0.0 \
    ROOMSTREAMS_GATEWAY_PORT=7880

# An empty working directory: nothing here may shadow the installed packages.
WORKDIR /app

USER 10001:10001

# Only the gateway listens (WebSocket + GET /healthz); the router has no port.
EXPOSE 7880

# No HEALTHCHECK here on purpose: the same image runs the router, which serves no
# HTTP. compose.yaml gives the gateway its /healthz check.

# No ENTRYPOINT, so `command:` in compose (or the docker run arguments) replaces
# the whole command line.
CMD ["python", "-m", "services.gateway"]
