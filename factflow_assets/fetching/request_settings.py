"""What a fetching stage sends with each request: its agent, headers and cookies from the YAML.

Sites that block unknown agents, or want an `Authorization` header or a session cookie, are
crawled by saying so in the stage's config. A value may name environment variables as
`${NAME}`, read when the stage opens: the secret stays out of the YAML, and so out of the frozen
config the factflow database keeps; the value read is registered for masking, so an error message
or a log line that would carry it shows `***`. A variable that is not set fails the stage at
once, naming it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from resources.masking import register_secret

from ..failures import PermanentError

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
#: Headers the fetch sets itself or that would misdescribe the request.
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "accept-encoding", "cookie", "user-agent"})
#: Headers that identify the caller: never sent on to another host a redirect leads to.
CREDENTIAL_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def header_name_problem(name: str) -> str | None:
    if not _TOKEN.match(name):
        return f"not a header name: {name!r}"
    if name.lower() in RESERVED_HEADERS:
        return f"{name} is not set here (use user_agent and cookies for those; the others the fetch sets)"
    return None


def expand(value: str, where: str) -> str:
    """`value` with each `${NAME}` replaced by the variable's value (registered as a secret)."""

    def variable(match: re.Match) -> str:
        name = match.group(1)
        if name not in os.environ:
            raise PermanentError(f"environment variable {name} (named in {where}) is not set")
        register_secret(os.environ[name])
        return os.environ[name]

    return _REFERENCE.sub(variable, value)


def request_headers(user_agent: str | None, headers: Mapping[str, str], cookies: Mapping[str, str]) -> dict[str, str]:
    """The headers every request of the stage carries, variables read."""
    sent = {name: expand(value, f"headers.{name}") for name, value in headers.items()}
    if user_agent:
        sent["User-Agent"] = expand(user_agent, "user_agent")
    if cookies:
        sent["Cookie"] = "; ".join(f"{name}={expand(value, f'cookies.{name}')}" for name, value in cookies.items())
    return sent
