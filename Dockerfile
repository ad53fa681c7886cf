# SharpRay serving image: ONNX Runtime on the CPU, no torch. Build: docker build -t sharpray .
# Run:  docker run -p 11112:11112 -p 8080:8080 -v sharpray-data:/var/lib/sharpray \
#         -v ./config.yaml:/etc/sharpray/config.yaml:ro sharpray
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    SHARPRAY_CONFIG=/etc/sharpray/config.yaml \
    SHARPRAY_STORAGE__FOLDER=/var/lib/sharpray/store \
    SHARPRAY_STORAGE__DATABASE_URL=sqlite:////var/lib/sharpray/sharpray.db \
    SHARPRAY_NODE__HTTP_BIND=0.0.0.0

RUN useradd --system --uid 10001 --home-dir /var/lib/sharpray --create-home sharpray \
    && mkdir -p /etc/sharpray

WORKDIR /opt/sharpray
COPY pyproject.toml README.md config.yaml ./
COPY node ./node
COPY models ./models
COPY storage ./storage
# The README's install command, without the virtual environment (the image is the environment).
# DL3013: "." is this project, pinned by the build context itself.
# hadolint ignore=DL3013
RUN pip install --no-cache-dir ".[postgres]" \
    && cp config.yaml /etc/sharpray/config.yaml

USER 10001
VOLUME ["/var/lib/sharpray"]
EXPOSE 11112 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["sharpray"]
CMD ["serve"]
