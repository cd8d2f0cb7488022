"""Errors an operator can act on, for every layer (the ground floor: imports nothing of factflow).

Anything raised as a `FactflowError` is shown by the CLI as one line on stderr with a non-zero
exit, never as a traceback: the message must say what is wrong and, where it helps, what to do.
"""


class FactflowError(Exception):
    """A failure with a message fit for an operator."""


class NotFoundError(FactflowError):
    """An execution, message, key or stage that does not exist."""


class InvalidKeyError(FactflowError):
    """A storage key that is malformed or would escape the storage root."""


class PipelineConfigError(FactflowError):
    """A pipeline YAML that does not validate; carries the findings."""

    def __init__(self, message: str, findings: list | None = None):
        super().__init__(message)
        self.findings = findings or []


def error_text(error: BaseException) -> str:
    """`error`'s message, with the root cause it wraps when that says more.

    Network libraries wrap the operating system's answer: httpx says "All connection attempts
    failed" where the cause is "[Errno 111] Connect call failed ('127.0.0.1', 9)". A failed row
    must carry the real cause, so the innermost different message is added in brackets.
    """
    text = str(error) or type(error).__name__
    root, seen = error, {id(error)}
    while (inner := root.__cause__ or root.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        root = inner
    root_text = str(root)
    if root is not error and root_text and root_text not in text:
        return f"{text} ({type(root).__name__}: {root_text})"
    return text
