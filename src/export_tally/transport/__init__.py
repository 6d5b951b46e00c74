"""The network behind one door: the only package that imports httpx.

Discovery, the retrying request loop and the streaming of a download (whole or by byte range) into
a core parser. Everything above sees the tool's own exceptions, never httpx's.
"""

import sys

# httpx's __init__ tries to import its own command-line client (`httpx._main`: click, pygments,
# rich) and carries on without it when that fails. The tool never uses it, and trying costs about
# a third of importing httpx (`python -X importtime`, median of 5: 145 ms against 95 ms here); a
# None in sys.modules makes the attempt fail at once, into the fallback httpx provides for it.
sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]
