"""The network behind one door: the only package that imports httpx.

Discovery, the retrying request loop and the streaming of a download (whole or by byte range) into
a core parser. Everything above sees the tool's own exceptions, never httpx's.
"""
