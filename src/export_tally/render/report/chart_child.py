"""`python -m export_tally.render.report.chart_child`: render Vega-Lite specifications to SVG, in a
process of its own, so that a renderer that aborts (vl-convert panics in compiled code, which
no Python code can catch) takes only this process with it, never the run.

Reads a JSON list of [specification, Vega-Lite version] pairs on stdin; writes a JSON list of
SVG texts on stdout and exits 0, or one line on stderr and exits 1 when a chart fails.
Imports nothing of the tool: only the renderer.
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    import vl_convert

    jobs = json.load(sys.stdin)
    try:
        svgs = [
            vl_convert.vegalite_to_svg(spec, vl_version=version, allowed_base_urls=[])
            for spec, version in jobs
        ]
    except Exception as exc:  # any failure of the renderer: said in one line, the parent decides
        message = " ".join(f"{type(exc).__name__}: {exc}".split())
        print(message[:500], file=sys.stderr)
        return 1
    json.dump(svgs, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
