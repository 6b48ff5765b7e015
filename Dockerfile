# The image runs the wheel as shipped. Build the wheels first (syncgate's and its dependencies'),
# then the image, which installs them offline into a virtualenv:
#   pip wheel --wheel-dir dist . && docker build -t syncgate .      (or: make image)
# BASE_IMAGE must provide python3 (3.11 or newer) with venv. CI passes a Debian bookworm one it
# builds itself (.ci/package-check), as no public image registry is reachable there.
ARG BASE_IMAGE=python:3.11-slim

FROM ${BASE_IMAGE} AS install
COPY dist/ /dist/
RUN python3 -m venv /opt/venv \
 && /opt/venv/bin/pip install --no-cache-dir --quiet --no-index --find-links /dist syncgate

FROM ${BASE_IMAGE}
RUN useradd --system --create-home --uid 10001 syncgate \
 && mkdir -p /data && chown syncgate /data
COPY --from=install /opt/venv /opt/venv
# An empty working directory: migrations and templates come from the installed package.
WORKDIR /srv/syncgate
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    SYNCGATE_DATABASE_URL=sqlite:////data/syncgate.db
USER syncgate
VOLUME ["/data"]
EXPOSE 8000
# /livez of `serve`; a worker started with `--metrics-port 8000` answers it too.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/livez', timeout=2).status != 200)"]
CMD ["syncgate", "serve", "--host", "0.0.0.0", "--port", "8000"]
