"""Hypothesis strategies for requests over an OpenAPI document, biased toward the inputs that
break services: NUL and control characters, SQL and path punctuation, huge strings, dates at
and past the ends of what databases and datetime libraries hold, other tenants' ids, extra
JSON keys and malformed JSON. Schemathesis explores the schema broadly; these make sure every
run tries the classes of input an adversarial probe found."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import strategies as st

# No surrogates: an HTTP client cannot encode them, so they never reach a server.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=40)
HOSTILE_TEXT = st.sampled_from(
    [
        "\x00",
        "a\x00b",
        "%00",
        "\x1b[31m",
        "'; DROP TABLE devices; --",
        "../../etc/passwd",
        "\u202e",
        "ü" * 300,
        "x" * 5000,
        "",
        " ",
    ]
)
STRINGS = st.one_of(HOSTILE_TEXT, TEXT)
EXTREME_DATES = st.sampled_from(
    [
        "0001-01-01T00:00:00+14:00",
        "0001-01-01T00:00:00Z",
        "0001-01-02T00:00:00-12:00",
        "9999-12-31T23:59:59-14:00",
        "9999-12-31T23:59:59Z",
        "2026-02-30T00:00:00Z",
        "2026-11-01T00:00:00",
        "2026-11-01T00:00:00+25:00",
        "1970-01-01T00:00:00Z",
        "not a date",
    ]
)
DATES = st.one_of(
    EXTREME_DATES,
    st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    query: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    json_body: Any = None
    raw_body: bytes | None = None


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, op)
        for path, ops in sorted(doc["paths"].items())
        for method, op in sorted(ops.items())
    ]


def value_for(
    schema: dict[str, Any], doc: dict[str, Any], ids: list[str]
) -> st.SearchStrategy[Any]:
    """Values for one schema: valid ones and the hostile ones of its kind."""
    if "$ref" in schema:
        return value_for(resolve(doc, schema["$ref"]), doc, ids)
    if "anyOf" in schema:
        return st.one_of(*(value_for(s, doc, ids) for s in schema["anyOf"]))
    kind = schema.get("type")
    if "enum" in schema:
        return st.one_of(st.sampled_from(schema["enum"]), STRINGS)
    if kind == "null":
        return st.none()
    if kind == "string" and schema.get("format") == "uuid":
        return st.one_of(
            st.uuids().map(str), st.sampled_from(ids) if ids else st.nothing(), STRINGS
        )
    if kind == "string" and schema.get("format") == "date-time":
        return DATES
    if kind == "string":
        return STRINGS
    if kind in ("integer", "number"):
        return st.one_of(st.integers(min_value=-(2**70), max_value=2**70), STRINGS)
    if kind == "boolean":
        return st.one_of(st.booleans(), STRINGS)
    if kind == "object":
        return body_for(schema, doc, ids)
    return st.one_of(STRINGS, st.none())


def body_for(schema: dict[str, Any], doc: dict[str, Any], ids: list[str]) -> st.SearchStrategy[Any]:
    props = schema.get("properties", {})
    fields = {name: value_for(s, doc, ids) for name, s in props.items()}
    chosen = st.fixed_dictionaries({}, optional=fields)
    extra = st.dictionaries(STRINGS, STRINGS, max_size=2)
    return st.one_of(
        chosen,
        st.tuples(chosen, extra).map(lambda pair: {**pair[1], **pair[0]}),
        st.lists(STRINGS, max_size=3),
        STRINGS,
        st.none(),
    )


def request_for(
    method: str, path: str, op: dict[str, Any], doc: dict[str, Any], ids: list[str]
) -> st.SearchStrategy[Request]:
    path_params = {}
    query_params = {}
    for p in op.get("parameters", []):
        strategy = value_for(p.get("schema", {}), doc, ids)
        if p["in"] == "path":
            path_params[p["name"]] = strategy.map(_path_safe)
        elif p["in"] == "query":
            query_params[p["name"]] = strategy
    body_schema = (
        op.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    )
    raw = st.sampled_from([b"{", b'{"type": "daily"', b"[1,2", b"\x00", b"\xff\xfe", b"null"])
    body: st.SearchStrategy[tuple[Any, bytes | None]] = (
        st.one_of(
            value_for(body_schema, doc, ids).map(lambda b: (b, None)), raw.map(lambda r: (None, r))
        )
        if body_schema
        else st.just((None, None))
    )

    def build(parts: tuple[dict[str, str], dict[str, Any], tuple[Any, bytes | None]]) -> Request:
        filled, query, (json_body, raw_body) = parts
        url = path
        for name, value in filled.items():
            url = url.replace("{" + name + "}", value)
        shown = {k: str(v) for k, v in query.items() if v is not None}
        return Request(method, url, shown, {}, json_body, raw_body)

    return st.tuples(
        st.fixed_dictionaries(path_params),
        st.fixed_dictionaries({}, optional=query_params),
        body,
    ).map(build)


def any_request(doc: dict[str, Any], ids: list[str]) -> st.SearchStrategy[Request]:
    return st.one_of(*(request_for(m, p, op, doc, ids) for m, p, op in operations(doc)))


def resolve(doc: dict[str, Any], ref: str) -> dict[str, Any]:
    node: Any = doc
    for part in ref.removeprefix("#/").split("/"):
        node = node[part]
    return dict(node)


def _path_safe(value: Any) -> str:
    """A path segment: percent-encoded, so `/` or `?` in a value stays inside the segment."""
    from urllib.parse import quote

    return quote(str(value), safe="")
