"""Minimal, verified edits to a Compose file.

ruamel.yaml's round-trip parser locates every key and item (line and column) in the file as
written; the edit then rewrites only the characters of the values it changes, or drops only
the lines of the entries it removes. Dumping the whole document again would re-indent,
re-wrap and re-quote lines the tool never meant to touch. The result is parsed again and
compared with the intended change applied to the original data: any difference (a multi-line
scalar, an alias that shares the node, a merge key) refuses the edit, so a file is either
changed exactly as intended or left untouched.
"""

from __future__ import annotations

import copy
import functools
import io
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from afasa_ops.errors import UsageError

Key = str | int


class EditError(UsageError):
    """An edit the tool will not make safely; the file is left as it was."""


@dataclass(frozen=True)
class Edit:
    """Set the scalar at `path`, or delete the mapping key / sequence item at `path`."""

    action: Literal["set", "delete"]
    path: tuple[Key, ...]
    value: str | None = None

    def describe(self) -> str:
        where = ".".join(str(p) for p in self.path)
        return f"set {where} = {self.value}" if self.action == "set" else f"delete {where}"


def load_roundtrip(text: str, label: str) -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.error import MarkedYAMLError

    parser = YAML(typ="rt")
    try:
        return parser.load(io.StringIO(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "unknown position"
        raise UsageError(f"{label}: invalid YAML at {where}: {exc.problem}") from None


def edit_text(text: str, edits: list[Edit], label: str) -> str:
    """Apply `edits` to the YAML `text`; raise EditError instead of a doubtful result."""
    if not edits:
        return text
    return _edit_text(text, tuple(edits), label)


# A pure function of its arguments, and a round-trip parse costs tens of milliseconds: a
# step's apply asks again what its check just computed, from the same text.
@functools.lru_cache(maxsize=16)
def _edit_text(text: str, edits: tuple[Edit, ...], label: str) -> str:
    doc = load_roundtrip(text, label)
    lines = text.splitlines(keepends=True)
    located = sorted(
        (_locate(doc, e, label) for e in edits), key=lambda x: (x.line, x.col), reverse=True
    )
    for spot in located:
        lines = spot.apply(lines, label)
    new_text = "".join(lines)
    _verify(text, new_text, list(edits), label)
    return new_text


@dataclass
class _Spot:
    edit: Edit
    line: int  # 0-based
    col: int
    key_col: int  # column of the key (mapping) or of the `-` (block sequence)
    flow: bool
    is_key: bool  # the path ends at a mapping key (else a sequence item)

    def apply(self, lines: list[str], label: str) -> list[str]:
        if self.edit.action == "set":
            return _set_scalar(lines, self, label)
        if self.flow:
            return _delete_flow_item(lines, self, label)
        return _delete_block_entry(lines, self)


def _locate(doc: Any, edit: Edit, label: str) -> _Spot:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    where = ".".join(str(p) for p in edit.path)
    node = doc
    for step in edit.path[:-1]:
        node = _child(node, step, where, label)
    last = edit.path[-1]
    if isinstance(node, CommentedMap):
        if last not in node:
            raise EditError(f"{label}: {where} does not exist")
        if last not in dict(node.non_merged_items()):
            raise EditError(
                f"{label}: {where} comes from a merge key (<<); change it where the anchor "
                "is defined, by hand, or give the service its own value"
            )
        _refuse_shared(node[last], where, label)
        kline, kcol = node.lc.key(last)
        vline, vcol = node.lc.value(last)
        flow = node.fa.flow_style()
        if edit.action == "set":
            return _Spot(edit, vline, vcol, kcol, flow, True)
        return _Spot(edit, kline, kcol, kcol, flow, True)
    if isinstance(node, CommentedSeq):
        if not isinstance(last, int) or not 0 <= last < len(node):
            raise EditError(f"{label}: {where} does not exist")
        _refuse_shared(node[last], where, label)
        line, col = node.lc.item(last)
        flow = node.fa.flow_style()
        dash = col if flow else _dash_col(node, last, col)
        return _Spot(edit, line, col, dash, flow, False)
    raise EditError(f"{label}: {where}: the parent is not a mapping or a list")


def _child(node: Any, step: Key, where: str, label: str) -> Any:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    in_map = isinstance(node, CommentedMap) and step in node
    in_seq = isinstance(node, CommentedSeq) and isinstance(step, int) and 0 <= step < len(node)
    if not (in_map or in_seq):
        raise EditError(f"{label}: {where} does not exist")
    child = node[step]
    if isinstance(node, CommentedMap) and step not in dict(node.non_merged_items()):
        raise EditError(f"{label}: {where} is inherited through a merge key (<<); edit it by hand")
    _refuse_shared(child, where, label)
    return child


def _refuse_shared(node: Any, where: str, label: str) -> None:
    """A node carrying an anchor may be aliased elsewhere: changing it would change those too."""
    anchor = getattr(node, "anchor", None)
    name = getattr(anchor, "value", None) if anchor is not None else None
    if name:
        raise EditError(
            f"{label}: {where} is the anchor &{name}, which other entries may share through "
            f"*{name}; give the service its own value, then re-run"
        )


def _dash_col(seq: Any, index: int, item_col: int) -> int:
    # The item column points at the value; the dash sits before it ("- value").
    return max(item_col - 2, 0)


# -- scalar tokens ------------------------------------------------------------------------------


def _scalar_end(line: str, col: int, flow: bool, label: str, lineno: int) -> tuple[int, str]:
    """End column (exclusive) of the scalar starting at `col`, and its quote style."""
    quote = line[col] if col < len(line) else ""
    if quote == "'":
        i = col + 1
        while i < len(line):
            if line[i] == "'":
                if i + 1 < len(line) and line[i + 1] == "'":
                    i += 2
                    continue
                return i + 1, "'"
            i += 1
        raise EditError(f"{label}: line {lineno + 1}: a quoted value spans lines; edit it by hand")
    if quote == '"':
        i = col + 1
        while i < len(line):
            if line[i] == "\\":
                i += 2
                continue
            if line[i] == '"':
                return i + 1, '"'
            i += 1
        raise EditError(f"{label}: line {lineno + 1}: a quoted value spans lines; edit it by hand")
    if quote in ("|", ">"):
        raise EditError(f"{label}: line {lineno + 1}: a block scalar; edit it by hand")
    end = len(line.rstrip("\r\n"))
    comment = line.find(" #", col)
    if comment != -1:
        end = min(end, comment)
    if flow:
        for stop in (",", "]", "}"):
            pos = line.find(stop, col)
            if pos != -1:
                end = min(end, pos)
    while end > col and line[end - 1] in " \t":
        end -= 1
    return end, ""


def _render(value: str, quote: str) -> str:
    if quote == "'":
        return "'" + value.replace("'", "''") + "'"
    if quote == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return value


def _set_scalar(lines: list[str], spot: _Spot, label: str) -> list[str]:
    line = lines[spot.line]
    end, quote = _scalar_end(line, spot.col, spot.flow, label, spot.line)
    assert spot.edit.value is not None
    lines = list(lines)
    lines[spot.line] = line[: spot.col] + _render(spot.edit.value, quote) + line[end:]
    return lines


# -- deletions ----------------------------------------------------------------------------------


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _delete_block_entry(lines: list[str], spot: _Spot) -> list[str]:
    """Drop the entry's own lines: its first line, and following lines indented deeper than
    its key or dash (its value). Comment lines at the entry's level or above belong to what
    comes next (a banner), so they stay."""
    start = spot.line
    last = start
    for i in range(start + 1, len(lines)):
        text = lines[i]
        if not text.strip():
            continue
        ind = _indent(text)
        # An indentless sequence under a key (`key:\n- item`) is part of the key's value.
        indentless_item = spot.is_key and ind == spot.key_col and text.lstrip().startswith("- ")
        if ind > spot.key_col or indentless_item:
            last = i
            continue
        break
    return lines[:start] + lines[last + 1 :]


def _delete_flow_item(lines: list[str], spot: _Spot, label: str) -> list[str]:
    if spot.is_key:
        raise EditError(
            f"{label}: line {spot.line + 1}: removing a key from a flow mapping {{...}}; "
            "edit it by hand"
        )
    line = lines[spot.line]
    end, _ = _scalar_end(line, spot.col, True, label, spot.line)
    after = line[end:]
    stripped = after.lstrip(" ")
    if stripped.startswith(","):
        # Drop the item, its comma and the space after it.
        rest = stripped[1:].lstrip(" ")
        new = line[: spot.col] + rest
    else:
        # The last item: drop the comma before it instead.
        before = line[: spot.col].rstrip(" ")
        if before.endswith(","):
            before = before[:-1]
        new = before + after
    lines = list(lines)
    lines[spot.line] = new
    return lines


# -- verification ---------------------------------------------------------------------------


def _loader() -> type[yaml.SafeLoader]:
    return getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _plain(text: str) -> Any:
    return yaml.load(text, Loader=_loader())


def apply_to_data(data: Any, edits: list[Edit]) -> Any:
    """The same edits on plain data: what the file must mean after the text edit."""
    out = copy.deepcopy(data)
    ordered = sorted(edits, key=lambda e: tuple(_sort_key(p) for p in e.path))
    for edit in reversed(ordered):
        parent = out
        for step in edit.path[:-1]:
            parent = parent[step]
        if edit.action == "set":
            parent[edit.path[-1]] = edit.value
        else:
            del parent[edit.path[-1]]
    return out


def _sort_key(part: Key) -> tuple[int, int, str]:
    return (0, part, "") if isinstance(part, int) else (1, 0, part)


def _verify(old: str, new: str, edits: list[Edit], label: str) -> None:
    expected = apply_to_data(_plain(old), edits)
    try:
        actual = _plain(new)
    except yaml.YAMLError as exc:
        raise EditError(
            f"{label}: the edit would break the YAML ({exc}); file left unchanged"
        ) from None
    if actual != expected:
        raise EditError(
            f"{label}: the edit would change more than intended "
            f"({'; '.join(e.describe() for e in edits)}); file left unchanged, edit it by hand"
        )
