"""Fakes the tests (and demos) use instead of real providers and exchanges."""
