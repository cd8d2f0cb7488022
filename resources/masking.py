"""Secrets out of URIs before they are shown or logged: `user:secret@host` becomes `user:***@host`,
and query parameters that carry credentials are masked too."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
SECRET_PARAMETERS = {"password", "secret", "token", "key", "access_key", "secret_key", "aws_secret_access_key", "sig", "signature"}


def mask_uri(uri: str | None) -> str | None:
    if not uri:
        return uri
    parts = urlsplit(uri)
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, has_password, _ = userinfo.partition(":")
        netloc = f"{user}:{MASK}@{host}" if has_password else f"{user}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = urlencode([(k, MASK if k.lower() in SECRET_PARAMETERS else v) for k, v in pairs], safe="*")
    if (netloc, query) == (parts.netloc, parts.query):
        return uri  # nothing secret; urlunsplit would also drop the empty host of sqlite:////path
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))
