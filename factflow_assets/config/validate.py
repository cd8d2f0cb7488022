"""Validating pipeline YAML: findings with stable codes and the path and line of each.

Four passes, each as complete as the one before allows: YAML syntax (and duplicate keys, which
PyYAML would silently overwrite), the document's structure (pydantic), every adapter's `config`
against that adapter's own model, then the route graph. A file is valid when no finding is an
error; warnings do not stop a pipeline from running.
"""

from __future__ import annotations

import difflib
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ValidationError

from ..adapters import ADAPTERS
from .findings import Finding, format_path
from .models import NAME_PATTERN, SUPPORTED_VERSIONS, PipelineSpec, RouteSpec
from .pipeline import Pipeline

HIGH_CONCURRENCY = 64

_STRUCTURE_ERRORS = {"model_type", "model_attributes_type", "dict_type", "list_type"}


@dataclass
class ValidationResult:
    source: str
    findings: list[Finding] = field(default_factory=list)
    pipeline: Pipeline | None = None

    @property
    def valid(self) -> bool:
        return not any(f.is_error for f in self.findings)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.is_error]


#: A pipeline is a page or two of YAML; anything past this is refused unread (E005).
MAX_FILE_BYTES = 1024 * 1024
#: Nodes the document may have once every alias is expanded (E006): a pipeline has hundreds; a
#: "billion laughs" of nine levels of nine aliases has nine to the ninth.
MAX_EXPANDED_NODES = 100_000
#: Route names that would share a storage prefix with something else.
RESERVED_ROUTE_NAMES = frozenset({"dataset"})
#: How deep mappings and lists may nest. A pipeline needs six; PyYAML composes recursively, and a
#: few hundred levels (1.2 KB of brackets) exhaust Python's stack before any rule is checked.
MAX_DEPTH = 64


def validate_file(path: Path) -> ValidationResult:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return ValidationResult(str(path), [Finding("E005", f"the file has {size:,} bytes; a pipeline YAML may have at most {MAX_FILE_BYTES:,}")])
        text = path.read_bytes().decode("utf-8")
    except (OSError, UnicodeDecodeError) as error:
        return ValidationResult(str(path), [Finding("E003", f"cannot read the file: {error}")])
    return validate_text(text, pipeline_name=path.stem, source=str(path))


def validate_text(text: str, pipeline_name: str, source: str = "<text>") -> ValidationResult:
    try:
        return _validate_text(text, pipeline_name, source)
    except RecursionError:  # nested past what any check foresaw: still a finding, never a crash
        return ValidationResult(source, [Finding("E007", "the document is nested too deep to read")])


def _validate_text(text: str, pipeline_name: str, source: str) -> ValidationResult:
    result = ValidationResult(source)
    if len(text) > MAX_FILE_BYTES:
        result.findings.append(Finding("E005", f"the text has {len(text):,} characters; a pipeline YAML may have at most {MAX_FILE_BYTES:,}"))
        return result
    try:
        too_deep = _too_deep(text)
        if too_deep is not None:
            result.findings.append(too_deep)
            return result
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        expanded = _expanded_nodes(root, {}, set())
        if expanded > MAX_EXPANDED_NODES:
            result.findings.append(Finding("E006", f"aliases expand the document to more than {MAX_EXPANDED_NODES:,} nodes; write the values out"))
            return result
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        problem = getattr(error, "problem", None) or str(error)
        result.findings.append(
            Finding("E001", f"YAML syntax: {problem}", line=mark.line + 1 if mark else None, column=mark.column + 1 if mark else None)
        )
        return result
    locate = _Locator(root)
    if data is None:
        result.findings.append(Finding("E002", "the document is empty"))
        return result
    result.findings.extend(_duplicate_keys(root, ()))
    if not _NAME.fullmatch(pipeline_name):
        result.findings.append(Finding("E110", f"pipeline name {pipeline_name!r} (the file name) must match {NAME_PATTERN}"))
    if not isinstance(data, dict):
        result.findings.append(Finding("E101", "the document must be a mapping (version, routes, init_message)", line=1))
        return result

    spec = _validate_structure(data, locate, result.findings)
    adapter_configs = _validate_adapters(data, locate, result.findings)
    if spec is not None:
        _validate_graph(spec, locate, result.findings)
    result.findings.sort(key=lambda f: (f.line or 0, f.code))
    if result.valid and spec is not None:  # no spec without an error finding
        result.pipeline = Pipeline.build(pipeline_name, spec, text, adapter_configs)
    return result


# --- pass 1: YAML ---------------------------------------------------------------------------


def _too_deep(text: str) -> Finding | None:
    """E007 at the line where nesting passes MAX_DEPTH, read from the token stream (PyYAML's
    scanner is a loop, unlike its composer)."""
    depth = 0
    for token in yaml.scan(text, Loader=yaml.SafeLoader):
        if isinstance(token, (yaml.FlowSequenceStartToken, yaml.FlowMappingStartToken, yaml.BlockSequenceStartToken, yaml.BlockMappingStartToken)):
            depth += 1
            if depth > MAX_DEPTH:
                mark = token.start_mark
                return Finding("E007", f"mappings and lists nest more than {MAX_DEPTH} levels deep", line=mark.line + 1, column=mark.column + 1)
        elif isinstance(token, (yaml.FlowSequenceEndToken, yaml.FlowMappingEndToken, yaml.BlockEndToken)):
            depth -= 1
    return None


def _expanded_nodes(node, sizes: dict[int, int], open_nodes: set[int]) -> int:
    """How many nodes the document has with every alias written out, counted once per shared node
    (so a bomb is measured without being expanded); a node that contains itself counts as
    unbounded."""
    if node is None:
        return 0
    key = id(node)
    if key in sizes:
        return sizes[key]
    if key in open_nodes:
        return MAX_EXPANDED_NODES + 1
    open_nodes.add(key)
    if isinstance(node, yaml.MappingNode):
        children = [child for pair in node.value for child in pair]
    elif isinstance(node, yaml.SequenceNode):
        children = node.value
    else:
        children = []
    total = 1
    for child in children:
        total += _expanded_nodes(child, sizes, open_nodes)
        if total > MAX_EXPANDED_NODES:
            break
    open_nodes.discard(key)
    sizes[key] = total
    return total

_NAME = re.compile(NAME_PATTERN)


def _duplicate_keys(node, path) -> list[Finding]:
    found = []
    if isinstance(node, yaml.MappingNode):
        seen = set()
        for key, value in node.value:
            name = key.value if isinstance(key, yaml.ScalarNode) else None
            if name in seen:
                found.append(
                    Finding(
                        "E004",
                        f"duplicate key {name!r}: the later value would silently win",
                        format_path((*path, name)),
                        key.start_mark.line + 1,
                        key.start_mark.column + 1,
                    )
                )
            seen.add(name)
            found.extend(_duplicate_keys(value, (*path, name)))
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            found.extend(_duplicate_keys(item, (*path, index)))
    return found


class _Locator:
    """Line and column of a YAML path, from the composed node tree."""

    def __init__(self, root):
        self.root = root

    def __call__(self, parts) -> tuple[int | None, int | None]:
        node, mark = self.root, None
        for part in parts:
            if node is None:
                break
            mark = node.start_mark
            if isinstance(node, yaml.MappingNode):
                match = next(((k, v) for k, v in node.value if getattr(k, "value", None) == part), None)
                if match is None:
                    node = None
                    break
                mark, node = match[0].start_mark, match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                node = node.value[part]
                mark = node.start_mark
            else:
                node = None
        if mark is None and self.root is not None:
            mark = self.root.start_mark
        return (mark.line + 1, mark.column + 1) if mark else (None, None)

    def finding(self, code: str, message: str, parts) -> Finding:
        line, column = self(parts)
        return Finding(code, message, format_path(parts), line, column)


# --- pass 2 and 3: pydantic models ----------------------------------------------------------

#: The shape of the product's first YAML (routes keyed by name, joined by named queues), which a
#: newcomer's file often still has: said in one finding that shows the shape here.
_OLD_SHAPE_HINT = (
    "routes here are a list, each with its name, not a mapping keyed by route name (the original shape); "
    "a route that reads another's output says `input: {route: NAME}` instead of inbound/outbound queues: "
    "routes: [{name: %s, adapters: [...]}, {name: ..., input: {route: %s}, adapters: [...]}]"
)
_QUEUE_FIELDS = {"inbound", "outbound"}


def _old_shape(data: dict, locate: _Locator) -> list[Finding]:
    """Findings for the original YAML shape: routes as a mapping; inbound/outbound queues."""
    routes = data.get("routes")
    if isinstance(routes, dict) and routes:
        first = next(iter(routes))
        name = first if isinstance(first, str) else "scrape"
        return [locate.finding("E101", "wrong structure: " + _OLD_SHAPE_HINT % (name, name), ("routes",))]
    found = []
    for r, route in enumerate(routes if isinstance(routes, list) else []):
        for queue in sorted(_QUEUE_FIELDS & set(route) if isinstance(route, dict) else ()):
            found.append(
                locate.finding(
                    "E301",
                    f"unknown field {queue!r}: queues are not named here; a route reads another's output with `input: {{route: NAME}}`",
                    ("routes", r, queue),
                )
            )
    return found


def _validate_structure(data: dict, locate: _Locator, findings: list[Finding]) -> PipelineSpec | None:
    old = _old_shape(data, locate)
    findings.extend(old)
    if isinstance(data.get("routes"), dict) and old:
        return None  # the original shape: the rest would only repeat it
    try:
        return PipelineSpec.model_validate(data)
    except ValidationError as error:
        said = {(finding.code, finding.path) for finding in old}  # inbound/outbound: said with the hint
        findings.extend(f for f in _from_pydantic(error, PipelineSpec, (), locate) if (f.code, f.path) not in said)
        return None


def _validate_adapters(data: dict, locate: _Locator, findings: list[Finding]) -> dict:
    """Check each adapter's type and config; return the config models by (route, index)."""
    configs: dict[tuple[str, int], BaseModel] = {}
    routes = data.get("routes")
    if not isinstance(routes, list):
        return configs
    for r, route in enumerate(routes):
        adapters = route.get("adapters") if isinstance(route, dict) else None
        if not isinstance(adapters, list):
            continue
        for a, adapter in enumerate(adapters):
            if not isinstance(adapter, dict) or not isinstance(adapter.get("type"), str):
                continue
            path = ("routes", r, "adapters", a)
            adapter_type = adapter["type"]
            adapter_class = ADAPTERS.get(adapter_type)
            if adapter_class is None:
                findings.append(
                    locate.finding(
                        "E103",
                        f"unknown adapter type {adapter_type!r}{_suggest(adapter_type, ADAPTERS)}; known: {', '.join(sorted(ADAPTERS))}",
                        (*path, "type"),
                    )
                )
                continue
            config = adapter.get("config") or {}
            if not isinstance(config, dict):
                continue  # pass 2 reported the wrong structure
            try:
                model = adapter_class.config_model.model_validate(config)
                if isinstance(route.get("name"), str):  # a name of another type: pass 2 reported it
                    configs[(route["name"], a)] = model
            except ValidationError as error:
                findings.extend(_from_pydantic(error, adapter_class.config_model, (*path, "config"), locate, adapter_type))
    return configs


def _from_pydantic(error: ValidationError, model: type[BaseModel], prefix, locate: _Locator, adapter: str | None = None) -> list[Finding]:
    found = []
    owner = f" for adapter {adapter}" if adapter else ""
    for item in error.errors():
        loc = tuple(part for part in item["loc"] if not (isinstance(part, str) and part.startswith("function-")))
        parts = (*prefix, *loc)
        kind = item["type"]
        if kind == "extra_forbidden":
            name = str(loc[-1])
            allowed = _fields_at(model, loc[:-1])
            found.append(locate.finding("E301", f"unknown field {name!r}{owner}{_suggest(name, allowed)}", parts))
        elif kind == "missing":
            found.append(locate.finding("E302", f"missing required field {loc[-1]!r}{owner}", parts))
        elif kind in _STRUCTURE_ERRORS:
            found.append(locate.finding("E101", f"wrong structure: {item['msg'].lower()}", parts))
        elif kind == "too_short":
            found.append(locate.finding("E111", f"{format_path(parts)} needs at least one item", parts))
        elif kind == "string_pattern_mismatch":
            found.append(locate.finding("E110", f"invalid name {item['input']!r}: use lowercase letters, digits and _ , starting with a letter", parts))
        else:
            found.append(locate.finding("E201", f"invalid value {_short(item.get('input'))}: {item['msg']}", parts))
    return found


def _fields_at(model: type[BaseModel], loc) -> list[str]:
    """The field names of the (nested) model reached by `loc`, for did-you-mean hints."""
    current: typing.Any = model
    for part in loc:
        current = _unwrap(current)
        if isinstance(part, int):
            args = typing.get_args(current)
            current = args[0] if args else None
        elif isinstance(current, type) and issubclass(current, BaseModel) and part in current.model_fields:
            current = current.model_fields[part].annotation
        else:
            return []
    current = _unwrap(current)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return list(current.model_fields)
    return []


def _unwrap(annotation):
    """`X | None` -> X"""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        return members[0] if len(members) == 1 else annotation
    return annotation


def _suggest(name: str, choices) -> str:
    close = difflib.get_close_matches(name, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


# --- pass 4: the route graph ----------------------------------------------------------------


def _validate_graph(spec: PipelineSpec, locate: _Locator, findings: list[Finding]) -> None:
    """How the routes fit together: names, inputs, cycles, and what the init route's first stage
    is given."""
    if spec.version not in SUPPORTED_VERSIONS:
        findings.append(locate.finding("E109", f"version {spec.version} is not supported (supported: {SUPPORTED_VERSIONS})", ("version",)))
    routes = _validate_routes(spec, locate, findings)
    init_route = spec.init_message.route
    if init_route not in routes:
        findings.append(locate.finding("E105", f"init_message.route {init_route!r} is not a route{_suggest(init_route, routes)}", ("init_message", "route")))
        return
    _validate_inputs(spec, routes, locate, findings)
    first = routes[init_route].adapters[0]
    reads = ADAPTERS[first.type].reads_init_fields if first.type in ADAPTERS else ()
    if reads and not any(name in spec.init_message.payload for name in reads):
        findings.append(
            locate.finding(
                "W503",
                f"init_message.payload has none of {', '.join(reads)}, which {first.type} reads; pass it with --set {reads[0]}=...",
                ("init_message", "payload"),
            )
        )


def _validate_routes(spec: PipelineSpec, locate: _Locator, findings: list[Finding]) -> dict[str, RouteSpec]:
    """Each route on its own: a free name, distinct stage names, a sane concurrency. Returns the
    routes by name (the first of a repeated name)."""
    routes: dict[str, RouteSpec] = {}
    for r, route in enumerate(spec.routes):
        if route.name in routes:
            findings.append(locate.finding("E102", f"route name {route.name!r} is used twice", ("routes", r, "name")))
        if route.name in RESERVED_ROUTE_NAMES:  # executions/<E>/dataset/ holds the execution's dataset
            findings.append(
                locate.finding("E110", f"route name {route.name!r} is reserved (the execution's dataset is stored under it)", ("routes", r, "name"))
            )
        routes.setdefault(route.name, route)
        stages = set()
        for a, adapter in enumerate(route.adapters):
            if adapter.stage_name in stages:
                findings.append(
                    locate.finding(
                        "E104", f"stage {adapter.stage_name!r} appears twice in route {route.name!r}; give one a `name:`", ("routes", r, "adapters", a)
                    )
                )
            stages.add(adapter.stage_name)
        if route.concurrency > HIGH_CONCURRENCY:
            findings.append(
                locate.finding(
                    "W502",
                    f"concurrency {route.concurrency} is above {HIGH_CONCURRENCY}: rarely faster, hard on the sites fetched",
                    ("routes", r, "concurrency"),
                )
            )
    return routes


def _validate_inputs(spec: PipelineSpec, routes: dict[str, RouteSpec], locate: _Locator, findings: list[Finding]) -> None:
    """Every route's input names a route (and stage) that exists, the init route takes no other
    input, no route is fed through a cycle."""
    init_route = spec.init_message.route
    for r, route in enumerate(spec.routes):
        path = ("routes", r, "input")
        if route.input is None:
            if route.name != init_route:
                findings.append(locate.finding("W501", f"route {route.name!r} has no input and is not the init route: it never runs", ("routes", r)))
            continue
        if route.name == init_route:
            findings.append(locate.finding("E108", f"route {route.name!r} takes the init message; it cannot also have an input", path))
        elif route.input.route not in routes:
            findings.append(locate.finding("E106", f"input route {route.input.route!r} does not exist{_suggest(route.input.route, routes)}", (*path, "route")))
        elif route.input.stage and route.input.stage not in {a.stage_name for a in routes[route.input.route].adapters}:
            findings.append(locate.finding("E106", f"route {route.input.route!r} has no stage {route.input.stage!r}", (*path, "stage")))
    for r, route in enumerate(spec.routes):
        seen, current = {route.name}, route
        while current.input is not None and current.input.route in routes:
            current = routes[current.input.route]
            if current.name in seen:
                findings.append(locate.finding("E107", f"route {route.name!r} is fed through a cycle of route inputs", ("routes", r, "input")))
                break
            seen.add(current.name)
