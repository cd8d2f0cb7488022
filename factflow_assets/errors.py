"""Errors an operator can act on.

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
