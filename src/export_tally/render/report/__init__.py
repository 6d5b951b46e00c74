"""`--report FILE.html`: a self-contained HTML report of a run, with static SVG charts.

`preflight` checks the target and the libraries before the run, `facts` gathers what the run did,
and `page` (which loads altair) builds the page once the counts are written; its charts are drawn
by vl-convert in a child process (`chart_process`), so that the renderer cannot abort the run.
"""
