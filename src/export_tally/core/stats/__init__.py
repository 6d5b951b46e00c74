"""Statistics (`--stats`): the statistics parser and its Aggregator (parser.py), what a row must
hold (row_rules.py), the fast path's earliest and latest times (time_bounds.py), and exact,
mergeable statistics with their report (aggregate.py)."""
