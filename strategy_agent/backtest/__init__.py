"""Backtests: cost estimate, spending cap, knowledge-leakage check and progress."""
