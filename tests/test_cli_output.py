"""How the CLI renders values: object content for `storage get --output json`, sizes, durations."""

import base64

import pytest

from cli.output import format_ms, format_size
from cli.storage_cmd import content_fields


@pytest.mark.parametrize(
    "body, content_type, expected",
    [
        ("café".encode(), "text/markdown; charset=utf-8; variant=GFM", {"encoding": "text", "content": "café"}),
        ("café".encode("latin-1"), 'text/html; charset="iso-8859-1"', {"encoding": "text", "content": "café"}),
        (b'{"url": "http://x/"}', "application/json", {"encoding": "text", "content": '{"url": "http://x/"}'}),
        (b"\x89PNG\r\n", "image/png", {"encoding": "base64", "content": base64.b64encode(b"\x89PNG\r\n").decode()}),
        (b"\xff\xfe broken", "text/plain; charset=utf-8", {"encoding": "base64", "content": base64.b64encode(b"\xff\xfe broken").decode()}),
        (b"abc", "text/plain; charset=no-such-charset", {"encoding": "base64", "content": "YWJj"}),
        (b"abc", "", {"encoding": "base64", "content": "YWJj"}),
    ],
)
def test_content_is_text_only_when_its_type_says_text_and_it_decodes(body, content_type, expected):
    assert content_fields(body, content_type) == expected


def test_sizes_and_durations_read_at_a_glance():
    assert [format_size(n) for n in (None, 0, 1023, 1024, 1536, 5 * 2**20, 3 * 2**40)] == ["", "0B", "1023B", "1.0KiB", "1.5KiB", "5.0MiB", "3.0TiB"]
    assert [format_ms(v) for v in (None, 0.25, 1234.5, 65_000)] == ["", "0.2ms", "1,234.5ms", "1m05s"]
