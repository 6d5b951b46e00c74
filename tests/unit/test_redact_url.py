"""URLs in messages never show credentials: the one place a URL is redacted."""

from __future__ import annotations

import pytest

from export_tally.transport.client import ClientOptions
from export_tally.transport.shared_terms import redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("http://127.0.0.1:8000", "http://127.0.0.1:8000"),
        ("https://user:secret@h.example/api?x=1", "https://h.example/api?x=1"),
        # An unescaped @ in the password: the host is what follows the last one.
        ("https://user:p@ss@h.example:8443/x", "https://h.example:8443/x"),
        ("https://token@h.example", "https://h.example"),
    ],
)
def test_user_information_is_removed(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_the_client_options_show_the_server_redacted() -> None:
    assert ClientOptions("https://u:p@ss@h.example").redacted_url == "https://h.example"
