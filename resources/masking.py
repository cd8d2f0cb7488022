"""Secrets out of URIs before they are shown or logged: `user:secret@host` becomes `user:***@host`,
and query parameters that carry credentials are masked too.

`install_log_masking()` applies the same to every log line of the process (factflow's, Dagster's,
SQLAlchemy's, botocore's): a database URL with its password in an error message is masked in
the run's event log and on the terminal alike.
"""

from __future__ import annotations

import logging
import re
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


_URI_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>]+")


def mask_text(text: str) -> str:
    """`text` with every URI in it masked."""
    if "://" not in text:
        return text
    return _URI_IN_TEXT.sub(lambda match: _mask_or_keep(match.group(0)), text)


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
