"""stratforge: discover, test and run trading strategies."""

__version__ = "0.1.0"
