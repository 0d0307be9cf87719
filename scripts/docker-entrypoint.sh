#!/bin/sh
# Container entry point of the trader worker (see Dockerfile). Paper mode unless TRADING_MODE=live
# and LIVE_CONFIRM=yes; MODEL (registry name or path) defaults to the registry's active model.
set -eu
set -- stratforge trader run --mode "${TRADING_MODE:-paper}" --data-dir "${STRATFORGE_DATA_DIR:-/data}" \
    --health-port "${HEALTH_PORT:-8080}" --trade-size "${TRADE_SIZE:-10}" "$@"
if [ -n "${MODEL:-}" ]; then set -- "$@" --model "$MODEL"; fi
if [ -n "${REPLAY:-}" ]; then set -- "$@" --replay "$REPLAY"; fi
if [ "${TRADING_MODE:-paper}" = "live" ] && [ "${LIVE_CONFIRM:-}" = "yes" ]; then
    set -- "$@" --i-understand-live-trading
fi
exec "$@"
