"""Validation findings: a stable code, the YAML path of the bad field, its line, a message.

Codes (README, "Pipeline YAML"): E0xx YAML syntax, E1xx structure, E2xx values, E3xx fields,
W5xx warnings. Codes never change meaning, so scripts can match on them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

CODES = {
    "E001": "YAML syntax error",
    "E002": "empty document",
    "E003": "file unreadable or not UTF-8",
    "E004": "duplicate key in a mapping",
    "E005": "file over the size cap",
    "E006": "aliases expand the document beyond the budget",
    "E007": "the document is nested too deep",
    "E101": "wrong structure (a mapping or list was expected)",
    "E102": "duplicate route name",
    "E103": "unknown adapter type",
    "E104": "duplicate stage name in a route",
    "E105": "init_message names an unknown route",
    "E106": "route input names an unknown route or stage",
    "E107": "route inputs form a cycle",
    "E108": "the init route cannot also have an input",
    "E109": "unsupported pipeline version",
    "E110": "invalid name",
    "E111": "empty list where at least one item is needed",
    "E201": "invalid value",
    "E301": "unknown config field",
    "E302": "missing required field",
    "W501": "route is never fed (no input and not the init route)",
    "W502": "concurrency unusually high",
    "W503": "init payload lacks the field the first adapter reads",
}


@dataclass(frozen=True)
class Finding:
    code: str
    message: str
    path: str = ""
    line: int | None = None
    column: int | None = None

    @property
    def severity(self) -> str:
        return "warning" if self.code.startswith("W") else "error"

    @property
    def is_error(self) -> bool:
        return self.severity == "error"

    def to_dict(self) -> dict:
        return {**asdict(self), "severity": self.severity}

    def location(self) -> str:
        where = self.path or "(document)"
        return f"{where} (line {self.line})" if self.line else where


def format_path(parts) -> str:
    """('routes', 0, 'adapters', 1, 'config', 'x') -> 'routes[0].adapters[1].config.x'"""
    text = ""
    for part in parts:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else str(part)
    return text
