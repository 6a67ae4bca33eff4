"""prometheus-adapter's rule semantics, encoded from its source for the tests.

kubernetes-sigs/prometheus-adapter v0.12.0 (commit ``01919d0ef11859bc214e0c8a8bd5368afd9d47f7``,
Apache-2.0), ``docs/config.md`` and the code it describes:

- config (``pkg/config/config.go``, read with yaml.v2 ``UnmarshalStrict``: an unknown
  field is an error): ``rules`` of ``seriesQuery``, ``seriesFilters`` (``is``/``isNot``),
  ``resources`` (``template``, ``overrides``: label -> ``{group, resource}``,
  ``namespaced``), ``name`` (``matches``, ``as``), ``metricsQuery``;
- discovery: ``seriesQuery`` is a Prometheus series selector (``/api/v1/series``); then
  each ``seriesFilters`` entry and ``name.matches`` as an ``is`` filter, Go's
  ``Regexp.MatchString`` (unanchored) on the series name (``pkg/naming/metric_namer.go``
  ``NamersFromConfig``, ``FilterSeries``);
- association: each label of a series named in ``overrides`` is that group-resource,
  normalised by the RESTMapper (``pod`` and ``pods`` are ``pods``); a series is namespaced
  when one of its resources is not namespaces, nodes or persistentvolumes
  (``pkg/naming/resource_converter.go`` ``ResourcesForSeries``); one metric per resource
  (``pkg/custom-provider/series_registry.go`` ``SetSeries``);
- naming: ``name.matches`` (default ``.*``) found in the series name, expanded into
  ``as`` (default ``$0`` without a group, ``$1`` with one) as Go's ``Regexp.ExpandString``
  does (``MetricNameForSeries``);
- querying (``pkg/naming/metrics_query.go`` ``Build``): ``LabelMatchers`` is the namespace
  label ``="NS"``, then the resource label ``="NAME"`` for one object or ``=~"A|B"`` for
  several (``pkg/client/helpers.go``: ``%q``); ``GroupBy`` the resource label; the template's
  delimiters ``<<`` ``>>``;
- answering (``series_registry.go`` ``MatchValuesToNames``, ``provider.go`` ``metricsFor``):
  each returned sample is keyed by its resource label's value; a requested object without
  one gets no value.

Prometheus's own: a series selector's regular expressions are anchored at both ends, a
missing label reads as the empty string; ``sum``/``avg ... by (L)`` keep one series per
value of L. :func:`evaluate` computes the one query shape the rules use on constant series
(where ``avg_over_time`` of a series is its value).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "MetricInfo",
    "build_query",
    "check_config",
    "evaluate",
    "expand",
    "metric_infos",
    "selector_matches",
    "values_by_object",
]

Series = Mapping[str, str]

#: config.go's fields (yaml tags) by struct.
_RULE_FIELDS = {"seriesQuery", "seriesFilters", "resources", "name", "metricsQuery"}
_RESOURCES_FIELDS = {"template", "overrides", "namespaced"}
_NAME_FIELDS = {"matches", "as"}
_FILTER_FIELDS = {"is", "isNot"}
_GROUP_RESOURCE_FIELDS = {"group", "resource"}
#: What the RESTMapper normalises the core resources used here to.
_PLURAL = {"pod": "pods", "pods": "pods", "namespace": "namespaces", "namespaces": "namespaces"}
_NOT_NAMESPACED = {"namespaces", "nodes", "persistentvolumes"}
_MATCHER = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*("(?:[^"\\]|\\.)*")\s*(,|$)')


def check_config(config: Any) -> list[dict[str, Any]]:
    """The rules of a config, refused (AssertionError) as UnmarshalStrict would refuse them."""
    assert isinstance(config, dict) and set(config) <= {"rules", "resourceRules", "externalRules"}
    rules = config["rules"]
    assert isinstance(rules, list)
    for rule in rules:
        assert set(rule) <= _RULE_FIELDS, set(rule) - _RULE_FIELDS
        assert isinstance(rule["seriesQuery"], str)
        for item in rule.get("seriesFilters") or []:
            assert set(item) <= _FILTER_FIELDS and len(item) == 1
        resources = rule.get("resources", {})
        assert set(resources) <= _RESOURCES_FIELDS
        for target in resources.get("overrides", {}).values():
            assert set(target) <= _GROUP_RESOURCE_FIELDS and "resource" in target
        assert set(rule.get("name", {})) <= _NAME_FIELDS
    return rules


def selector_matches(selector: str, series: Series) -> bool:
    """Whether a Prometheus series selector (``name{l="v",...}`` or ``{...}``) picks
    ``series`` (its labels, ``__name__`` included)."""
    name, _, rest = selector.partition("{")
    assert rest.endswith("}"), selector
    body = rest[:-1]
    matchers = []
    while body:
        found = _MATCHER.match(body)
        assert found, f"not a label matcher: {body!r}"
        label, op, quoted, _sep = found.groups()
        matchers.append((label, op, json.loads(quoted)))
        body = body[found.end() :]
    if name.strip():
        matchers.append(("__name__", "=", name.strip()))
    for label, op, value in matchers:
        have = series.get(label, "")
        if op in ("=~", "!~"):
            hit = re.fullmatch(value, have) is not None
            if hit != (op == "=~"):
                return False
        elif (have == value) != (op == "="):
            return False
    return True


def expand(template: str, match: re.Match[str]) -> str:
    """Go's ``Regexp.ExpandString``: ``$name`` (name as long as possible: letters, digits,
    underscores) or ``${name}``, ``$$`` a dollar; an unknown group is empty."""
    out, i = [], 0
    while i < len(template):
        if template[i] != "$":
            out.append(template[i])
            i += 1
            continue
        if template.startswith("$$", i):
            out.append("$")
            i += 2
            continue
        braced = re.match(r"\$\{([A-Za-z0-9_]+)\}", template[i:])
        plain = re.match(r"\$([A-Za-z0-9_]+)", template[i:])
        found = braced or plain
        if found is None:
            out.append("$")
            i += 1
            continue
        name = found.group(1)
        if name.isdigit():
            index = int(name)
            group = match.group(index) if index <= (match.re.groups or 0) else None
        else:
            group = match.groupdict().get(name)
        out.append(group or "")
        i += found.end()
    return "".join(out)


@dataclass(frozen=True)
class MetricInfo:
    """A metric of the custom metrics API (``provider.CustomMetricInfo``)."""

    resource: str
    namespaced: bool
    metric: str


def _name_of(rule: dict[str, Any], series_name: str) -> str | None:
    matches = rule.get("name", {}).get("matches", "") or ".*"
    pattern = re.compile(matches)
    found = pattern.search(series_name)
    if found is None:
        return None
    as_ = rule.get("name", {}).get("as", "")
    if not as_:
        assert pattern.groups <= 1, "must specify an 'as' value"
        as_ = "$0" if pattern.groups == 0 else "$1"
    return expand(as_, found)


def _passes_filters(rule: dict[str, Any], series_name: str) -> bool:
    filters = list(rule.get("seriesFilters") or [])
    if rule.get("name", {}).get("matches"):
        filters.append({"is": rule["name"]["matches"]})
    for item in filters:
        positive = "is" in item
        pattern = item["is"] if positive else item["isNot"]
        if (re.search(pattern, series_name) is not None) != positive:
            return False
    return True


def metric_infos(
    rules: Sequence[dict[str, Any]], series: Sequence[Series]
) -> dict[MetricInfo, tuple[int, str]]:
    """Every metric the rules expose for ``series``: its info -> (the index of the rule that
    serves it, the Prometheus series name)."""
    out: dict[MetricInfo, tuple[int, str]] = {}
    for index, rule in enumerate(rules):
        overrides = rule.get("resources", {}).get("overrides", {})
        for labels in series:
            name = labels["__name__"]
            if not selector_matches(rule["seriesQuery"], labels) or not _passes_filters(rule, name):
                continue
            metric = _name_of(rule, name)
            if metric is None:
                continue
            resources = [_PLURAL[overrides[lbl]["resource"]] for lbl in labels if lbl in overrides]
            namespaced = any(r not in _NOT_NAMESPACED for r in resources)
            for resource in resources:
                scoped = namespaced and resource not in _NOT_NAMESPACED
                out[MetricInfo(resource, scoped, metric)] = (index, name)
    return out


def _label_for(rule: dict[str, Any], resource: str) -> str:
    overrides = rule.get("resources", {}).get("overrides", {})
    (label,) = [lbl for lbl, gr in overrides.items() if _PLURAL[gr["resource"]] == resource]
    return label


def build_query(
    rule: dict[str, Any], series_name: str, resource: str, namespace: str, names: Sequence[str]
) -> str:
    """The query the adapter sends for ``names`` (objects of ``resource`` in ``namespace``)."""
    exprs = []
    if namespace:
        exprs.append(f"{_label_for(rule, 'namespaces')}={json.dumps(namespace)}")
    label = _label_for(rule, resource)
    op = "=~" if len(names) > 1 else "="
    exprs.append(f"{label}{op}{json.dumps('|'.join(names))}")
    fields = {"Series": series_name, "LabelMatchers": ",".join(exprs), "GroupBy": label}

    def field(found: re.Match[str]) -> str:
        assert found.group(1) in fields, f"template field {found.group(1)} not encoded"
        return fields[found.group(1)]

    return re.sub(r"<<\s*\.([A-Za-z]+)\s*>>", field, rule["metricsQuery"])


_QUERY = re.compile(
    r"\A(sum|avg)\(avg_over_time\((?P<sel>[^\[]+)\[[0-9]+[smh]\]\)\) by \((?P<by>[a-z_,]+)\)\Z"
)


def evaluate(
    query: str, series: Sequence[tuple[Series, float]]
) -> list[tuple[dict[str, str], float]]:
    """``sum|avg(avg_over_time(SELECTOR[D])) by (LABELS)`` over constant series."""
    found = _QUERY.match(query)
    assert found, f"query shape not encoded: {query}"
    how, selector, by = found.group(1), found.group("sel"), found.group("by").split(",")
    groups: dict[tuple[str, ...], list[float]] = {}
    for labels, value in series:
        if selector_matches(selector, labels):
            groups.setdefault(tuple(labels.get(b, "") for b in by), []).append(value)
    return [
        (dict(zip(by, key, strict=True)), sum(v) if how == "sum" else sum(v) / len(v))
        for key, v in groups.items()
    ]


def values_by_object(
    rule: dict[str, Any],
    resource: str,
    names: Sequence[str],
    result: Sequence[tuple[dict[str, str], float]],
) -> dict[str, float]:
    """The value the adapter answers for each requested object that has one."""
    label = _label_for(rule, resource)
    by_value = {labels.get(label, ""): value for labels, value in result}
    return {n: by_value[n] for n in names if n in by_value}
