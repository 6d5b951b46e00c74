"""Counting: the counting parser and its Aggregator (parser.py), exact mergeable counts
(tally.py)."""
