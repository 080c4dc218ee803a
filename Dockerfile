# The llmpulse sidecar: OTLP/HTTP receiver (4318), GPU collector, serving-engine scraper.
# Not built in CI (no Docker engine there); see README "What CI exercises".
#   docker build -t llmpulse:latest .
#   docker run -p 4318:4318 -v llmpulse-data:/data llmpulse:latest
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY llmpulse llmpulse
COPY agent agent
COPY collectors collectors
COPY analyzers analyzers
COPY dashboards dashboards
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

FROM python:3.11-slim
# embedded store, receiver and scraper, NVML bindings; the analyzers extra (torch) is left out to keep
# the image small: build with --build-arg EXTRAS=embedded,sidecar,gpu,analyzers to schedule analyzers.
ARG EXTRAS=embedded,sidecar,gpu
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir "$(ls /wheels/llmpulse-*.whl)[${EXTRAS}]" && rm -rf /wheels \
    && useradd --uid 10001 --create-home --shell /usr/sbin/nologin llmpulse \
    && mkdir -p /data && chown llmpulse:llmpulse /data
USER 10001
WORKDIR /data
ENV LLMPULSE_DSN=chdb:///data/store \
    LLMPULSE_SPOOL_DIR=/data/spool \
    LLMPULSE_AGENT_HOST=0.0.0.0 \
    LLMPULSE_AGENT_PORT=4318 \
    PYTHONUNBUFFERED=1
VOLUME ["/data"]
EXPOSE 4318
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:4318/healthz', timeout=2)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["llmpulse", "agent"]
