"""Live adapters: Gamma/CLOB market discovery, the CLOB market websocket, futures feeds (Binance, OKX),
the py-clob-client order executor and the feed recorder. Every base URL is configurable so tests run
them against local servers replaying the venues' message shapes."""
