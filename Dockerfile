# stratforge RL trader worker: paper mode by default, health check on /health.
#   docker build -t stratforge-trader .
#   docker run -p 8080:8080 -v trader-data:/data -e REPLAY=/data/hour.jsonl stratforge-trader
# Live trading needs TRADING_MODE=live, LIVE_CONFIRM=yes and the POLYMARKET_* secrets (see
# docs/trader-operations.md); without them the worker refuses to start in live mode.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    STRATFORGE_DATA_DIR=/data \
    TRADING_MODE=paper \
    HEALTH_PORT=8080

# build-essential: the package compiles a small C simulation core; curl: the HEALTHCHECK.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential curl \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml setup.py README.md ./
COPY src ./src
RUN pip install ".[trader,postgres,live]" \
    && apt-get purge -y build-essential && apt-get autoremove -y

RUN useradd --create-home --uid 10001 trader && mkdir -p /data && chown trader /data
USER trader
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD curl -fsS "http://127.0.0.1:${HEALTH_PORT}/health" || exit 1

COPY --chmod=755 scripts/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh
ENTRYPOINT ["/usr/local/bin/docker-entrypoint.sh"]
