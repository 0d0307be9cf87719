"""Live adapters: Gamma/CLOB market discovery, the CLOB market websocket, futures feeds (Binance,
OKX), the CLOB V2 order executor (py-clob-client-v2) and the feed recorder. Every base URL is
configurable so tests run them against local servers replaying the venues' message shapes."""
