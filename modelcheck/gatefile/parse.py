"""Parse a gate file's YAML once, with limits, into its node tree and its document.

PyYAML's C parser (``yaml.CSafeLoader`` where libyaml is present) produces the events; the node
tree is composed here, iteratively, so that hostile input is refused while it is read:

- nesting deeper than :data:`MAX_DEPTH` and more than :data:`MAX_NODES` nodes *after aliases are
  expanded* (an alias bomb) are errors, never a ``RecursionError`` or gigabytes of memory;
- a key written twice in one mapping is an error naming both lines (PyYAML keeps the last silently);
- mapping keys must be strings (``1:``, ``yes:``, ``null:`` are read as a number, a boolean, null);
- ``.nan``, ``.inf`` and floats too large to hold are errors (no bound of a gate can be infinite);
- an alias to its own anchor (a recursive document) is an error.

Errors are :class:`ParseError` with the 1-based line and the JSON path where known.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import yaml

#: Deepest nesting of mappings and lists (a gate file needs about 6).
MAX_DEPTH = 64
#: Most nodes (keys, values, list items) once aliases are expanded.
MAX_NODES = 100_000

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_STR = "tag:yaml.org,2002:str"
_FLOAT = "tag:yaml.org,2002:float"
_MERGE = "tag:yaml.org,2002:merge"
_TAG_NAMES = {
    "tag:yaml.org,2002:bool": "a boolean",
    "tag:yaml.org,2002:int": "a number",
    _FLOAT: "a number",
    "tag:yaml.org,2002:null": "null",
    "tag:yaml.org,2002:timestamp": "a date",
}


class ParseError(Exception):
    """The YAML cannot be read as a gate file's document; ``line`` is 1-based, ``parts`` the JSON path."""

    def __init__(self, problem: str, line: int | None = None, parts: tuple[str | int, ...] = ()) -> None:
        super().__init__(problem)
        self.problem = problem
        self.line = line
        self.parts = parts


class _GateLoader(_Loader):
    """The safe loader whose constructor turns a value Python rejects into a YAML error with its line."""

    def construct_object(self, node: yaml.Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, TypeError, OverflowError) as exc:
            raise yaml.constructor.ConstructorError(
                None, None, f"cannot read the value {short(node.value)}: {exc}", node.start_mark
            ) from None


@dataclass
class _Frame:
    node: yaml.Node
    anchor: str | None
    size: int = 1
    key: yaml.Node | None = None
    seen: dict[tuple[str, str], int] = field(default_factory=dict)


def short(value: object, limit: int = 60) -> str:
    """``repr(value)`` cut to ``limit`` characters: messages quote values, never whole documents."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def parse(text: str) -> tuple[Any, yaml.Node | None]:
    """The document (plain Python values) and its node tree; ParseError or yaml.YAMLError otherwise."""
    loader = _GateLoader(text)
    try:
        node = _compose(loader)
        if node is None:
            return None, None
        return loader.construct_document(node), node
    finally:
        loader.dispose()


def _compose(loader: Any) -> yaml.Node | None:
    loader.get_event()  # StreamStart
    if loader.check_event(yaml.StreamEndEvent):
        loader.get_event()
        return None
    loader.get_event()  # DocumentStart
    root = _compose_document(loader)
    loader.get_event()  # DocumentEnd
    if not loader.check_event(yaml.StreamEndEvent):
        event = loader.get_event()
        raise ParseError(
            "the file holds more than one YAML document ('---'); a gate file is one document",
            event.start_mark.line + 1,
        )
    loader.get_event()
    return root


def _compose_document(loader: Any) -> yaml.Node:
    anchors: dict[str, tuple[yaml.Node, int]] = {}
    open_anchors: set[str] = set()
    stack: list[_Frame] = []
    total = 0
    root: yaml.Node | None = None

    def path() -> tuple[str | int, ...]:
        parts: list[str | int] = []
        for frame in stack:
            if isinstance(frame.node, yaml.SequenceNode):
                parts.append(len(frame.node.value))
            elif frame.key is not None:
                parts.append(str(frame.key.value))
        return tuple(parts)

    def add(child: yaml.Node, size: int) -> None:
        nonlocal root, total
        total += size
        if total > MAX_NODES:
            raise ParseError(
                f"the document has more than {MAX_NODES:,} values once its aliases (*name) are expanded; "
                "a gate file needs far fewer (is this an alias bomb?)",
                child.start_mark.line + 1,
                path(),
            )
        if not stack:
            root = child
            return
        parent = stack[-1]
        parent.size += size
        if isinstance(parent.node, yaml.SequenceNode):
            parent.node.value.append(child)
        elif parent.key is None:
            _check_key(child, parent, path())
            parent.key = child
        else:
            parent.node.value.append((parent.key, child))
            parent.key = None

    while root is None:
        event = loader.get_event()
        start: Any = event.start_mark
        end: Any = event.end_mark
        line = start.line + 1
        if isinstance(event, yaml.AliasEvent):
            if event.anchor in open_anchors:
                raise ParseError(f"alias *{event.anchor} refers to the value that holds it (a loop)", line, path())
            if event.anchor not in anchors:
                raise ParseError(f"alias *{event.anchor} names no anchor (&{event.anchor}) above it", line, path())
            target, size = anchors[event.anchor]
            add(target, size)
        elif isinstance(event, yaml.ScalarEvent):
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(yaml.ScalarNode, event.value, event.implicit)
            node = yaml.ScalarNode(tag, event.value, start, end, style=event.style)
            is_key = bool(stack) and isinstance(stack[-1].node, yaml.MappingNode) and stack[-1].key is None
            if tag == _FLOAT and not is_key:
                _check_float(loader, node, path())
            if event.anchor is not None:
                anchors[event.anchor] = (node, 1)
            add(node, 1)
        elif isinstance(event, (yaml.SequenceStartEvent, yaml.MappingStartEvent)):
            if len(stack) >= MAX_DEPTH:
                raise ParseError(f"the document nests deeper than {MAX_DEPTH} levels", line, path())
            is_seq = isinstance(event, yaml.SequenceStartEvent)
            kind = yaml.SequenceNode if is_seq else yaml.MappingNode
            tag = event.tag
            if tag is None or tag == "!":
                tag = loader.resolve(kind, None, event.implicit)
            collection: yaml.Node = kind(tag, [], start, None, flow_style=event.flow_style)
            if event.anchor is not None:
                open_anchors.add(event.anchor)
            stack.append(_Frame(collection, event.anchor))
        elif isinstance(event, (yaml.SequenceEndEvent, yaml.MappingEndEvent)):
            frame = stack.pop()
            frame.node.end_mark = end
            if frame.anchor is not None:
                open_anchors.discard(frame.anchor)
                anchors[frame.anchor] = (frame.node, frame.size)
            total -= frame.size - 1  # its children were counted as they came; count the frame once
            add(frame.node, frame.size)
        else:  # pragma: no cover - the parser yields nothing else inside a document
            raise ParseError(f"unexpected YAML event {type(event).__name__}", line)
    return root


def _check_key(key: yaml.Node, frame: _Frame, parts: tuple[str | int, ...]) -> None:
    line = key.start_mark.line + 1
    if not isinstance(key, yaml.ScalarNode):
        raise ParseError("a key must be a plain name, not a list or mapping", line, parts)
    if key.tag == _MERGE:
        return
    if key.tag != _STR:
        kind = _TAG_NAMES.get(key.tag, key.tag)
        raise ParseError(
            f"key {short(key.value)} is read as {kind}, not a name; quote it ('{key.value}':)", line, parts
        )
    first = frame.seen.get((key.tag, key.value))
    if first is not None:
        raise ParseError(
            f"duplicate key {short(key.value)} at lines {first} and {line}; a key may appear once in a mapping "
            "(YAML would silently keep the last): remove one",
            line,
            (*parts, str(key.value)),
        )
    frame.seen[(key.tag, key.value)] = line


def _check_float(loader: Any, node: yaml.ScalarNode, parts: tuple[str | int, ...]) -> None:
    try:
        value = loader.construct_yaml_float(node)
    except (ValueError, OverflowError):
        return  # reported when the document is constructed
    if not math.isfinite(value):
        raise ParseError(
            f"{short(node.value)} is not a finite number; give a finite bound (NaN and infinity cannot be judged "
            "or reported)",
            node.start_mark.line + 1,
            parts,
        )
