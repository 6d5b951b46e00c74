"""A second process with pickled client options, as a worker process or a Dask worker gets them:
`python -m tests.support.smart_child` reads the pickled `(ClientOptions, file URL)` on stdin,
fetches the file through `client_for` (so with its own access token), and prints JSON: the
status, the lines, how many tokens this process got, and the SHA-256 of the token it sent (the
test compares it with its own; the token itself is not printed).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import sys

from export_tally.transport.client import client_for


def main() -> None:
    options, url = pickle.loads(sys.stdin.buffer.read())
    client = client_for(options)
    response = client.get(url)
    sent = response.request.headers.get("authorization", "")
    tokens = getattr(client.auth, "tokens", None)
    print(json.dumps({
        "status": response.status_code,
        "lines": response.content.count(b"\n"),
        "obtained": getattr(tokens, "obtained", 0),
        "token_sha256": hashlib.sha256(sent.encode()).hexdigest(),
    }))  # fmt: skip


if __name__ == "__main__":
    main()
