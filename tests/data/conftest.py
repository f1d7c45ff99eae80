"""Fixtures of the data tests: the fake exchange server."""

from tests.fakes.fake_exchange import fake_exchange

__all__ = ["fake_exchange"]
