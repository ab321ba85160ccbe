# AILB as a container image:
#   docker build -t marchproxy/ailb:latest .
#   docker run -d -p 8080:8080 -p 50051:50051 -e OPENAI_API_KEY=... -e ENABLE_MEMORY=true \
#     -v ailb_data:/app/ailb_memory marchproxy/ailb:latest
# `scripts/dev image` builds it as localhost/ailb:latest with podman or docker, also where no registry is reachable.
#
# BASE_IMAGE must provide python3 (>= 3.11) with the venv module, and useradd; both stages use it, so the
# virtualenv's interpreter link stays valid. The embedding model comes from an installed package: the image
# works offline. No PyTorch: the local model runs on ONNX Runtime.
# AILB_COMPILE=1 (the default) compiles the hot path to C extensions (see the README); the build stage installs
# a C compiler with apt-get for it, which the final image does not keep. --build-arg AILB_COMPILE=0: all Python.
ARG BASE_IMAGE=python:3.11-slim
ARG AILB_COMPILE=1

FROM ${BASE_IMAGE} AS build
# A pip configuration mounted for this build only (scripts/dev image passes one); unset means pip's defaults.
ARG PIP_CONFIG_FILE
ARG AILB_COMPILE
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_ROOT_USER_ACTION=ignore
# The user and the data folders, made here so that the final stage needs no RUN of its own (a build's mounts
# would leave their mount points in its layer).
RUN groupadd --system --gid 10001 ailb \
 && useradd --system --uid 10001 --gid 10001 --home-dir /app --no-create-home --shell /usr/sbin/nologin ailb \
 && mkdir -p /app/ailb_memory /app/ailb_rag
RUN python3 -m venv /opt/ailb
# gcc, the C library's headers and, where the base's Python has none of its own (Debian's python3), its headers.
RUN if [ "$AILB_COMPILE" != 0 ]; then \
      packages="gcc libc6-dev"; \
      python3 -c 'import pathlib, sys, sysconfig; sys.exit(not pathlib.Path(sysconfig.get_paths()["include"], "Python.h").exists())' \
        || packages="$packages python3-dev"; \
      apt-get update -qq \
      && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $packages > /dev/null \
      && rm -rf /var/lib/apt/lists/*; \
    fi
WORKDIR /build
# The dependencies first, from pyproject.toml and the build's own files alone (an empty package stands in for
# src/), so that a change to the sources or the README reuses this layer.
COPY pyproject.toml setup.py ./
COPY scripts/build ./scripts/build
RUN mkdir -p src/ailb && touch README.md src/ailb/__init__.py \
 && AILB_COMPILE=0 /opt/ailb/bin/pip install --no-compile . \
 && /opt/ailb/bin/pip uninstall -y ailb \
 && rm -rf /build/*
COPY pyproject.toml setup.py README.md ./
COPY scripts/build ./scripts/build
COPY src ./src
COPY scripts/image_warmup.py ./
# AILB itself, its hot path compiled unless AILB_COMPILE=0 (pip, setuptools and wheel are not needed at run time),
# then one demo run that writes the bytecode of exactly the modules a gateway imports (see scripts/image_warmup.py)
# and fails the build if the image cannot serve.
RUN AILB_COMPILE=$AILB_COMPILE /opt/ailb/bin/pip install --no-compile --no-deps . \
 && /opt/ailb/bin/python -m pip uninstall -y pip setuptools wheel \
 && find /opt/ailb -name __pycache__ -prune -exec rm -rf {} + \
 && /opt/ailb/bin/python image_warmup.py \
 && rm -rf /build

FROM ${BASE_IMAGE}
COPY --from=build /etc/passwd /etc/group /etc/shadow /etc/gshadow /etc/
COPY --from=build --chown=10001:10001 /app /app
COPY --from=build /opt/ailb /opt/ailb
# Memory in /app/ailb_memory and knowledge bases in /app/ailb_rag: mount volumes there to keep them.
ENV PATH=/opt/ailb/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    AILB_DATA_DIR=/app \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1
WORKDIR /app
USER ailb
EXPOSE 8080 50051
# Healthy while /healthz answers 200 (503: no model can be served); urlopen raises on any other answer.
# Python only: no curl in the image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 CMD ["python3", "-c", "\
import os, urllib.request as u; \
h = os.environ.get('HOST') or '0.0.0.0'; h = '127.0.0.1' if h in ('0.0.0.0', '::') else h; \
u.urlopen(f\"http://{f'[{h}]' if ':' in h else h}:{os.environ.get('HTTP_PORT') or 8080}/healthz\", timeout=4)"]
# ailb is PID 1 (exec form, no shell): SIGTERM reaches it, in-flight requests and streams get DRAIN_TIMEOUT
# seconds (30 by default) to finish, and it exits 0. Give `docker stop` / Kubernetes more time than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["ailb"]
CMD ["serve"]
