"""The CSV path shared by every CSV parser: bytes -> blocks of whole records (blocks.py), the
fast path's proofs that a quote-free piece is all good rows (fast_path.py), the `csv.reader`
path for everything else and the bad-row policy (reader_path.py), and which records a byte
range of a body owns (split.py)."""
