"""Names ``modelcheck publish`` sends to the Hub, checked before anything is sent: tag and branch names (git's
``check-ref-format`` rules), paths inside the repo (no ``..``, nothing absolute), and the token (no control
characters). Every message names the rule that was broken and never shows the token.
"""

from __future__ import annotations

import re

#: git check-ref-format: characters a ref name may not hold anywhere.
_FORBIDDEN = {" ": "a space", "~": "'~'", "^": "'^'", ":": "':'", "?": "'?'", "*": "'*'", "[": "'['", "\\": "'\\'"}


def ref_problem(name: str) -> str | None:
    """Which rule of ``git check-ref-format`` ``name`` breaks (as a phrase), or None for a valid tag/branch name."""
    if not name:
        return "it is empty"
    for char in name:
        if ord(char) < 0x20 or ord(char) == 0x7F:
            return f"it holds a control character ({char!r}); git refuses control characters, newlines included"
        if char in _FORBIDDEN:
            return f"it holds {_FORBIDDEN[char]}; git refuses space ~ ^ : ? * [ and \\ in ref names"
    if ".." in name:
        return "it holds '..'; git refuses two consecutive dots"
    if "@{" in name:
        return "it holds '@{'; git refuses that sequence"
    if name == "@":
        return "it is '@'; git refuses the single character '@'"
    if name.startswith("/") or name.endswith("/") or "//" in name:
        return "it starts or ends with '/' or holds '//'; git refuses empty path components"
    if name.endswith("."):
        return "it ends with '.'; git refuses that"
    for part in name.split("/"):
        if part.startswith("."):
            return f"its component {part!r} starts with '.'; git refuses that"
        if part.endswith(".lock"):
            return f"its component {part!r} ends with '.lock'; git refuses that"
    return None


def check_ref(name: str, what: str) -> None:
    """Raise ValueError (a usage error) when ``name`` is not a ref name git accepts; ``what`` is e.g. ``--tag``."""
    problem = ref_problem(name)
    if problem is not None:
        shown = name if name.isprintable() else ascii(name)
        raise ValueError(
            f"{what} {shown!r} is not a valid git ref name: {problem} (git check-ref-format); nothing was sent. "
            "Choose a name such as v1.2.0 or release/1.2"
        )


def repo_path_problem(path: str) -> str | None:
    """Why ``path`` (a file recorded in a report) cannot be a path inside the Hub repo, or None when it can."""
    if not path:
        return "it is empty"
    if any(ord(char) < 0x20 or ord(char) == 0x7F for char in path):
        return "it holds a control character"
    if path.startswith("/") or "\\" in path or re.match(r"[A-Za-z]:", path):
        return "it is absolute (or holds a backslash); report paths are relative to the model folder"
    parts = path.split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "it holds an empty, '.' or '..' component: it would reach outside the model folder"
    return None
