"""Keeping a gallery current: freshness rules, refits and the consistency check."""
