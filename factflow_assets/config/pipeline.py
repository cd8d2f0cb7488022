"""A validated pipeline: its stages in run order and how they feed each other.

Built only by the validator (`validate.py`) from YAML that passed, so everything here may assume
a well-formed graph: unique names, known adapters, inputs that exist, no cycles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from resources.errors import NotFoundError
from resources.hashing import content_hash

from ..adapters import ADAPTERS, Adapter, AdapterConfig
from .models import PipelineSpec, RouteSpec


@dataclass(frozen=True)
class StageRef:
    route: str
    stage: str

    def __str__(self) -> str:
        return f"{self.route}/{self.stage}"


@dataclass(frozen=True)
class Stage:
    route: RouteSpec
    index: int
    name: str
    adapter_type: str
    adapter_config: AdapterConfig
    upstream: StageRef | None  # None: the init route's first stage, fed by the init message

    @property
    def ref(self) -> StageRef:
        return StageRef(self.route.name, self.name)

    @property
    def adapter_class(self) -> type[Adapter]:
        return ADAPTERS[self.adapter_type]


@dataclass
class Pipeline:
    name: str
    spec: PipelineSpec
    text: str
    config_hash: str
    stages: list[Stage] = field(default_factory=list)

    @classmethod
    def build(cls, name: str, spec: PipelineSpec, text: str, adapter_configs: dict) -> Pipeline:
        pipeline = cls(name=name, spec=spec, text=text, config_hash=content_hash(text.encode()))
        for route in route_run_order(spec):
            for index, adapter in enumerate(route.adapters):
                if index > 0:
                    upstream = StageRef(route.name, route.adapters[index - 1].stage_name)
                elif route.input is not None:
                    upstream = StageRef(route.input.route, feeding_stage(spec, route.input))
                else:
                    upstream = None
                pipeline.stages.append(
                    Stage(
                        route=route,
                        index=index,
                        name=adapter.stage_name,
                        adapter_type=adapter.type,
                        adapter_config=adapter_configs[(route.name, index)],
                        upstream=upstream,
                    )
                )
        return pipeline

    @property
    def init_route(self) -> str:
        return self.spec.init_message.route

    def init_payload(self, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        return {**self.spec.init_message.payload, **(overrides or {})}

    def stage(self, route: str, stage: str) -> Stage:
        for candidate in self.stages:
            if candidate.route.name == route and candidate.name == stage:
                return candidate
        known = ", ".join(str(s.ref) for s in self.stages)
        raise NotFoundError(f"pipeline {self.name!r} has no stage {route}/{stage} (stages: {known})")

    def downstream_of(self, ref: StageRef) -> list[Stage]:
        """`ref`'s stage and every stage it feeds, directly or through others, in run order."""
        selected = {ref}
        for stage in self.stages:  # run order: a stage comes after the one feeding it
            if stage.upstream in selected:
                selected.add(stage.ref)
        return [stage for stage in self.stages if stage.ref in selected]

    def stages_after(self, ref: StageRef) -> list[Stage]:
        """Every stage `ref`'s stage feeds, directly or through others (across routes), in run
        order, without `ref`'s own: what a replay from `ref` runs again."""
        return [stage for stage in self.downstream_of(ref) if stage.ref != ref]

    def find_stage(self, name: str) -> Stage:
        """The stage `route/stage`, or the only stage called `name`; NotFoundError otherwise."""
        route, sep, stage = name.partition("/")
        if sep:
            return self.stage(route, stage)
        matches = [s for s in self.stages if s.name == name]
        if len(matches) == 1:
            return matches[0]
        if matches:
            raise NotFoundError(f"stage {name!r} is in several routes of {self.name!r}: say which, as " + " or ".join(str(s.ref) for s in matches))
        known = ", ".join(str(s.ref) for s in self.stages)
        raise NotFoundError(f"pipeline {self.name!r} has no stage {name!r} (stages: {known})")

    def stages_matching(self, scope: str, route: str | None = None, stage: str | None = None, adapter: str | None = None) -> list[Stage]:
        """The stages that `route`, `stage` and `adapter` select; NotFoundError naming what
        exists (within `scope`, say "execution E") when one of them names nothing here."""
        stages = self.stages
        if route is not None:
            _require(route, {s.route.name for s in stages}, "route", scope)
            stages = [s for s in stages if s.route.name == route]
            scope = f"route {route} of {scope}"
        if stage is not None:
            _require(stage, {s.name for s in stages}, "stage", scope)
            stages = [s for s in stages if s.name == stage]
        if adapter is not None:
            _require(adapter, {s.adapter_type for s in stages}, "adapter", scope)
            stages = [s for s in stages if s.adapter_type == adapter]
        return stages

    def first_stage(self, route: str) -> Stage:
        """The stage that takes `route`'s input."""
        return next(s for s in self.stages if s.route.name == route and s.index == 0)

    def route_names(self) -> list[str]:
        return [route.name for route in self.spec.routes]


def _require(value: str, known: set[str], what: str, scope: str) -> None:
    if value not in known:
        raise NotFoundError(f"{scope} has no {what} {value!r}; it has: {', '.join(sorted(known))}")


def feeding_stage(spec: PipelineSpec, route_input) -> str:
    """The stage named by a route input, defaulting to the last stage of its route."""
    if route_input.stage:
        return route_input.stage
    source = next(r for r in spec.routes if r.name == route_input.route)
    return source.adapters[-1].stage_name


def route_run_order(spec: PipelineSpec) -> list[RouteSpec]:
    """Routes reachable from the init route, each after the route that feeds it."""
    by_name = {route.name: route for route in spec.routes}
    order = [by_name[spec.init_message.route]]
    pending = [r for r in spec.routes if r.name != spec.init_message.route and r.input]
    placed = {order[0].name}
    progress = True
    while pending and progress:
        progress = False
        for route in list(pending):
            if route.input is not None and route.input.route in placed:
                order.append(route)
                placed.add(route.name)
                pending.remove(route)
                progress = True
    return order
