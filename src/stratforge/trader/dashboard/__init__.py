"""Static assets of the trader dashboard (served by :mod:`stratforge.trader.health`)."""
