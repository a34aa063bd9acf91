# The AFASA application image: afasa-ops serves the API (`afasa-ops serve`) and runs the
# workers (`afasa-ops worker report|sync|commands`) and the demo stand-ins. Build context:
# the repository root.
#
#   docker build -f compose/app.Dockerfile -t afasa-local/afasa-ops-app:dev .
#
# BASE_IMAGE is the locally built Debian bookworm + Python 3.11 image (compose/images/build.sh,
# no registry needed); a deployment with a registry may pass any Debian-like Python 3.11+
# image with python3-venv, e.g. --build-arg BASE_IMAGE=python:3.11-slim-bookworm.
ARG BASE_IMAGE=afasa-local/debian-python:bookworm
FROM ${BASE_IMAGE}

ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    VIRTUAL_ENV=/opt/afasa-ops \
    PATH=/opt/afasa-ops/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    AFASA_OPS_CONFIG=/etc/afasa-ops/afasa-ops.toml \
    PYTHONPATH=/opt/afasa

# Dependencies first, from the lock file, so a code change reuses this layer. Installed
# from build/wheels (compose/app/wheels.sh, run by compose/images/build.sh): the lock minus
# development-only tools, plus the build backend, so this build needs no package index.
COPY build/wheels /wheels
RUN set -eux; \
    python3 -m venv "$VIRTUAL_ENV"; \
    pip install -q --no-index --find-links /wheels -r /wheels/runtime.lock

# afasa-ops with its service extra (serve, workers): every dependency is already installed
# from the lock above, so this resolves against it and adds only afasa-ops itself.
COPY pyproject.toml README.md LICENSE /src/
COPY afasa_ops /src/afasa_ops
RUN set -eux; \
    pip install -q --no-index --find-links /wheels "/src[service]"; \
    rm -rf /src /wheels; \
    afasa-ops --help >/dev/null; \
    useradd --system --uid 10001 --home-dir /var/lib/afasa --create-home afasa

# The in-container config: everything else comes from AFASA_OPS_<SECTION>_<KEY> variables
# set by the compose file (secrets included: the environment is the reference there).
COPY compose/app/afasa-ops.toml /etc/afasa-ops/afasa-ops.toml
COPY compose/standins /opt/afasa/standins

USER afasa
WORKDIR /var/lib/afasa
EXPOSE 8000
CMD ["afasa-ops", "serve", "--host", "0.0.0.0", "--port", "8000"]
