# -*- coding: utf-8 -*-
# Copyright: (c) 2025, TokenLabs platform team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What "ready" means for the objects the platform waits on, kept apart from the API calls so it is unit-testable.

A selection names objects of one kind (by name, by label selector, or both) and the conditions each must show.
A condition is read from ``status.conditions``, or, for Gateway API routes and policies, from every
``status.parents`` / ``status.ancestors`` entry of one parent that its controller writes. A condition only counts
for the generation it was reported for: an object whose spec changed after its controller last looked is waiting.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import time
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from ansible_collections.tokenlabs.platform.plugins.module_utils.kube_client import KubeError, auth_argspec, connect

READY = "ready"
TOLERATED = "tolerated"
WAITING = "waiting"
STOPPED = "stopped"

SCOPES = ("status", "parents", "ancestors")
_REF_KEY = {"parents": "parentRef", "ancestors": "ancestorRef"}


class WaitError(Exception):
    """Bad input: reported before anything is read."""


class Condition:
    """One condition an object must show: ``type`` at ``status``, in ``scope``."""

    def __init__(
        self,
        type: str,
        status: str = "True",
        *,
        scope: str = "status",
        parent: Optional[str] = None,
        controller: Optional[str] = None,
        tolerate: Sequence[str] = (),
        stop_reasons: Sequence[str] = (),
    ) -> None:
        if scope not in SCOPES:
            raise WaitError("condition {0}: scope must be one of {1}, not {2!r}".format(type, ", ".join(SCOPES), scope))
        if scope == "status" and (parent or controller):
            raise WaitError("condition {0}: parent and controller apply to parents and ancestors only".format(type))
        self.type = type
        self.status = status
        self.scope = scope
        self.parent = parent
        self.controller = controller
        self.tolerate = tuple(tolerate)
        self.stop_reasons = tuple(stop_reasons)


class Selection:
    """Objects of one kind in one namespace, and what each must show."""

    def __init__(
        self,
        kind: str,
        api_version: str = "v1",
        namespace: Optional[str] = None,
        *,
        names: Sequence[str] = (),
        label_selectors: Sequence[str] = (),
        conditions: Sequence[Condition] = (),
        min_ready_replicas: Optional[int] = None,
        description: Optional[str] = None,
    ) -> None:
        if not conditions and min_ready_replicas is None:
            raise WaitError("{0}: give conditions or min_ready_replicas, or there is nothing to wait for".format(kind))
        if min_ready_replicas is not None and min_ready_replicas < 0:
            raise WaitError("{0}: min_ready_replicas must not be negative".format(kind))
        self.kind = kind
        self.api_version = api_version
        self.namespace = namespace
        self.names = tuple(names)
        self.label_selector = ",".join(label_selectors)
        self.conditions = tuple(conditions)
        self.min_ready_replicas = min_ready_replicas
        self.description = description

    @property
    def read_key(self) -> Tuple[str, str, str, str]:
        """Selections with the same key are served by one read per poll."""
        return (self.api_version, self.kind, self.namespace or "", self.label_selector)

    def label(self, name: str) -> str:
        where = "{0}/{1}".format(self.namespace, name) if self.namespace else name
        text = "{0} {1}".format(self.kind, where)
        return "{0} ({1})".format(text, self.description) if self.description else text


def _generation(obj: Mapping[str, Any]) -> int:
    return int((obj.get("metadata") or {}).get("generation") or 0)


def _stale(observed: Any, obj: Mapping[str, Any]) -> bool:
    return observed is not None and int(observed) < _generation(obj)


def _format(message: str, obj: Mapping[str, Any]) -> str:
    metadata = obj.get("metadata") or {}
    # Plain replacement, not str.format: the rest of a controller's message may hold braces of its own.
    fields = {"{kind}": obj.get("kind"), "{name}": metadata.get("name"), "{namespace}": metadata.get("namespace")}
    for field, value in fields.items():
        message = message.replace(field, value or "")
    return message


def _judge(
    cond: Condition, found: Optional[Mapping[str, Any]], obj: Mapping[str, Any], fallback_generation: Any
) -> Tuple[str, str]:
    """The state of one condition entry and, unless ready, why."""
    if found is None:
        return WAITING, "{0}: not reported yet".format(cond.type)
    if _stale(found.get("observedGeneration", fallback_generation), obj):
        return WAITING, "{0}: not yet observed for generation {1}".format(cond.type, _generation(obj))
    reason = found.get("reason") or ""
    detail = "{0} {1} {2}".format(cond.type, found.get("status"), reason).rstrip()
    if found.get("message"):
        detail = "{0} ({1})".format(detail, found["message"])
    if found.get("status") == cond.status:
        return READY, ""
    if found.get("message") and found["message"] in [_format(m, obj) for m in cond.tolerate]:
        return TOLERATED, detail
    if reason and reason in cond.stop_reasons:
        return STOPPED, detail
    return WAITING, detail


def _find(conditions: Iterable[Mapping[str, Any]], type: str) -> Optional[Mapping[str, Any]]:
    return next((c for c in conditions if c.get("type") == type), None)


def _entries(cond: Condition, obj: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    """The parents/ancestors entries a condition is judged on."""
    ref_key = _REF_KEY[cond.scope]
    entries = []
    for entry in (obj.get("status") or {}).get(cond.scope) or []:
        if cond.parent and (entry.get(ref_key) or {}).get("name") != cond.parent:
            continue
        if cond.controller and entry.get("controllerName") != cond.controller:
            continue
        if not cond.controller and _find(entry.get("conditions") or [], cond.type) is None:
            # Other controllers (policy controllers) add entries of their own for the same parent.
            continue
        entries.append(entry)
    return entries


_ORDER = (STOPPED, WAITING, TOLERATED, READY)


def _worst(states: Iterable[str]) -> str:
    states = list(states)
    return next((s for s in _ORDER if s in states), READY)


def judge(selection: Selection, obj: Mapping[str, Any]) -> Tuple[str, List[str]]:
    """The state of one object against its selection: ready, tolerated, waiting or stopped, with the reasons."""
    states: List[str] = []
    details: List[str] = []

    def note(state: str, detail: str) -> None:
        states.append(state)
        if detail:
            details.append(detail)

    status = obj.get("status") or {}
    for cond in selection.conditions:
        if cond.scope == "status":
            note(*_judge(cond, _find(status.get("conditions") or [], cond.type), obj, status.get("observedGeneration")))
            continue
        entries = _entries(cond, obj)
        if not entries:
            where = " for {0}".format(cond.parent) if cond.parent else ""
            note(WAITING, "{0}: no {1} status{2} yet".format(cond.type, cond.scope[:-1], where))
        for entry in entries:
            note(*_judge(cond, _find(entry.get("conditions") or [], cond.type), obj, None))
    if selection.min_ready_replicas is not None:
        ready = int(status.get("readyReplicas") or 0)
        if _stale(status.get("observedGeneration"), obj):
            note(WAITING, "generation {0} not yet observed".format(_generation(obj)))
        elif ready < selection.min_ready_replicas:
            note(WAITING, "{0} of {1} replicas ready".format(ready, selection.min_ready_replicas))
    return _worst(states), details


class Outcome:
    """Every selected object's state after one poll."""

    def __init__(self) -> None:
        self.objects: List[Dict[str, Any]] = []

    def add(self, selection: Selection, name: str, state: str, details: Sequence[str]) -> None:
        self.objects.append(
            {
                "kind": selection.kind,
                "namespace": selection.namespace,
                "name": name,
                "state": state,
                "details": list(details),
                "label": selection.label(name),
            }
        )

    @property
    def state(self) -> str:
        return _worst(o["state"] for o in self.objects)

    def problems(self) -> List[str]:
        return [
            "{0}: {1}".format(o["label"], "; ".join(o["details"]) or o["state"])
            for o in self.objects
            if o["state"] in (WAITING, STOPPED)
        ]

    def tolerated(self) -> List[str]:
        return ["{0}: {1}".format(o["label"], "; ".join(o["details"])) for o in self.objects if o["state"] == TOLERATED]


def evaluate(
    selections: Sequence[Selection], reads: Mapping[Tuple[str, str, str, str], Sequence[Mapping[str, Any]]]
) -> Outcome:
    """Judge every selection against the objects read for its key; a named object that was not read is missing.

    An object is judged once: by the selection that names it, else by the first selection whose selector matches it.
    """
    outcome = Outcome()
    named = {(s.read_key, n) for s in selections for n in s.names}
    judged = set()
    for selection in selections:
        by_name = {(o.get("metadata") or {}).get("name"): o for o in reads.get(selection.read_key) or []}
        wanted = list(selection.names)
        if selection.label_selector or not selection.names:
            key = selection.read_key
            wanted += [n for n in sorted(by_name) if (key, n) not in named and (key, n) not in judged]
        for name in wanted:
            judged.add((selection.read_key, name))
            obj = by_name.get(name)
            if obj is None:
                outcome.add(selection, name, WAITING, ["not found"])
            else:
                outcome.add(selection, name, *judge(selection, obj))
    return outcome


def argspec() -> Dict[str, Any]:
    spec = auth_argspec()
    spec.update(
        objects=dict(
            type="list",
            elements="dict",
            required=True,
            options=dict(
                kind=dict(type="str", required=True),
                api_version=dict(type="str", default="v1"),
                namespace=dict(type="str"),
                name=dict(type="str"),
                names=dict(type="list", elements="str", default=[]),
                label_selectors=dict(type="list", elements="str", default=[]),
                conditions=dict(
                    type="list",
                    elements="dict",
                    default=[],
                    options=dict(
                        type=dict(type="str", required=True),
                        status=dict(type="str", default="True"),
                        scope=dict(type="str", choices=["status", "parents", "ancestors"], default="status"),
                        parent=dict(type="str"),
                        controller=dict(type="str"),
                        tolerate=dict(type="list", elements="str", default=[]),
                        stop_reasons=dict(type="list", elements="str", default=[]),
                    ),
                ),
                min_ready_replicas=dict(type="int"),
                description=dict(type="str"),
            ),
        ),
        timeout=dict(type="int", default=300),
        delay=dict(type="float", default=2),
        fail=dict(type="bool", default=True),
    )
    return spec


def selections_of(params: Mapping[str, Any]) -> List[Selection]:
    if params["timeout"] < 0 or params["delay"] <= 0:
        raise WaitError("timeout must not be negative and delay must be positive")
    selections = []
    for index, entry in enumerate(params["objects"]):
        names = ([entry["name"]] if entry.get("name") else []) + list(entry["names"])
        try:
            selections.append(
                Selection(
                    entry["kind"],
                    api_version=entry["api_version"],
                    namespace=entry.get("namespace"),
                    names=names,
                    label_selectors=entry["label_selectors"],
                    conditions=[Condition(**c) for c in entry["conditions"]],
                    min_ready_replicas=entry.get("min_ready_replicas"),
                    description=entry.get("description"),
                )
            )
        except WaitError as exc:
            raise WaitError("objects[{0}]: {1}".format(index, exc)) from exc
    return selections


class Reader:
    """One read per kind, namespace and selector."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.requests = 0
        self._paths: Dict[Tuple[str, str, str], str] = {}

    def _path(self, selection: Selection) -> str:
        """The collection path of the selection's kind (its namespace only where the kind is namespaced)."""
        key = (selection.api_version, selection.kind, selection.namespace or "")
        if key not in self._paths:
            try:
                resource = self.client.resource(selection.kind, selection.api_version)
            except KubeError as exc:
                raise WaitError(str(exc)) from exc
            if resource.namespaced and not selection.namespace:
                raise WaitError("{0} is namespaced: give the namespace".format(selection.kind))
            self._paths[key] = resource.path(namespace=selection.namespace if resource.namespaced else None)
        return self._paths[key]

    def read(self, group: Sequence[Selection]) -> List[Mapping[str, Any]]:
        path = self._path(group[0])
        names = {n for s in group for n in s.names}
        single = len(names) == 1 and all(s.names and not s.label_selector for s in group)
        query = [("labelSelector", group[0].label_selector)] if group[0].label_selector else []
        self.requests += 1
        try:
            data = json.loads(
                self.client.request("GET", "{0}/{1}".format(path, next(iter(names))) if single else path, query)
            )
        except KubeError as exc:
            if exc.status == 404 and single:
                return []
            raise WaitError("Reading {0} failed: {1}".format(path, exc)) from exc
        return [data] if single else data.get("items") or []


def poll(reader: Reader, selections: Sequence[Selection]) -> Outcome:
    groups: Dict[Tuple[str, str, str, str], List[Selection]] = {}
    for selection in selections:
        groups.setdefault(selection.read_key, []).append(selection)
    return evaluate(selections, {key: reader.read(group) for key, group in groups.items()})


def wait(reader: Reader, selections: Sequence[Selection], timeout: int, delay: float) -> Tuple[Outcome, int, float]:
    started = time.monotonic()
    polls = 0
    while True:
        outcome = poll(reader, selections)
        polls += 1
        elapsed = time.monotonic() - started
        if outcome.state in (READY, TOLERATED, STOPPED) or elapsed + delay > timeout:
            return outcome, polls, round(elapsed, 2)
        time.sleep(delay)


def execute(params: Mapping[str, Any], check_mode: bool, diff: bool) -> Dict[str, Any]:
    """The module's result; reads only, so check and diff mode change nothing."""
    try:
        selections = selections_of(params)
        reader = Reader(connect(params))
        outcome, polls, elapsed = wait(reader, selections, params["timeout"], params["delay"])
    except (WaitError, KubeError) as exc:
        return {"failed": True, "msg": str(exc)}
    ready = outcome.state in (READY, TOLERATED)
    result: Dict[str, Any] = {
        "changed": False,
        "ready": ready,
        "stopped": outcome.state == STOPPED,
        "elapsed": elapsed,
        "polls": polls,
        "requests": reader.requests,
        "objects": outcome.objects,
        "tolerated": outcome.tolerated(),
    }
    if not ready:
        ended = "(the wait stopped on a stop reason)" if result["stopped"] else "after {0}s".format(params["timeout"])
        result["msg"] = "Not ready {0}: {1}".format(ended, "; ".join(outcome.problems()))
        result["failed"] = params["fail"]
    return result
