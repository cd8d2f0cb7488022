"""Secrets out of URIs before they are shown or logged: `user:secret@host` becomes `user:***@host`,
and query parameters that carry credentials are masked too.

`install_log_masking()` applies the same to every log line of the process (factflow's, Dagster's,
SQLAlchemy's, botocore's): a database URL with its password in an error message is masked in
the run's event log and on the terminal alike.
"""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

MASK = "***"
#: Values read from the environment for requests (an Authorization header's token, a session
#: cookie): masked wherever they would be shown, in this process.
_SECRETS: set[str] = set()
SECRET_PARAMETERS = {
    "password", "passwd", "pwd", "sslpassword", "secret", "token", "access_token", "auth", "key", "api_key", "apikey",
    "access_key", "secret_key", "aws_secret_access_key", "sig", "signature", "credentials",
}


#: `user:secret@host` wherever it stands, with or without a scheme before it: what a malformed URL
#: (`postgresql:factflow:secret@db/factflow`, no `//`) still carries.
_USERINFO = re.compile(r"(?P<user>[A-Za-z0-9._%+~-]+):(?P<secret>[^\s@/]+)@(?=[A-Za-z0-9\[])")


def mask_userinfo(text: str) -> str:
    """`text` with the secret of every `user:secret@host` masked."""
    return _USERINFO.sub(lambda match: f"{match['user']}:{MASK}@", text) if "@" in text else text


def mask_uri(uri: str | None) -> str | None:
    if not uri:
        return uri
    if "://" not in uri:  # not a URL that parses as one: whatever looks like credentials goes
        return mask_userinfo(uri)
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


_URI_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def register_secret(value: str) -> None:
    """Mask `value` from now on wherever `mask_text` runs (a value under 4 characters would mask
    ordinary text, and says too little to be worth hiding)."""
    if len(value) >= 4:
        _SECRETS.add(value)


def mask_text(text: str) -> str:
    """`text` with every URI in it masked, any `user:secret@host` outside one, and every
    registered secret."""
    if "://" in text:
        text = _URI_IN_TEXT.sub(lambda match: _mask_or_keep(match.group(0)), text)
    for secret in _SECRETS:
        if secret in text:
            text = text.replace(secret, MASK)
    return mask_userinfo(text)


def mask_values(value: Any) -> Any:
    """`value` (a payload: mappings, lists, text) with every string in it masked."""
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, dict):
        return {key: mask_values(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [mask_values(item) for item in value]
    return value


def _mask_or_keep(uri: str) -> str:
    try:
        return mask_uri(uri) or uri
    except ValueError:  # not parseable as a URI (a bad port, say): mask what looks like userinfo
        return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", rf"\1{MASK}@", uri)


class MaskingLogRecord(logging.LogRecord):
    """A log record whose message comes out with its URIs masked, whoever formats it."""

    def getMessage(self) -> str:
        return mask_text(super().getMessage())


def install_log_masking() -> None:
    """Mask URIs in every log record created from now on in this process (idempotent)."""
    if logging.getLogRecordFactory() is logging.LogRecord:
        logging.setLogRecordFactory(MaskingLogRecord)
