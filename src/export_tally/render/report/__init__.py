"""`--report FILE.html`: a self-contained HTML report of a run, with static SVG charts.

`preflight` checks the target and the libraries before the run, `facts` gathers what the run did,
and `page` (which loads altair and vl-convert) builds the page once the run has succeeded.
"""
