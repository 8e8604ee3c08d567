"""Exclude globs, with the meaning rsync and restic users expect.

`*` and `?` stay inside one path component, `**` crosses components, a pattern
without `/` matches a name at any depth, and an excluded directory excludes all
below it.
"""

import re


def compile_excludes(patterns):
    """Return a function (relative_path) -> bool telling whether a path is excluded."""
    compiled = [glob_to_regex(pattern) for pattern in patterns]
    if not compiled:
        return lambda path: False

    def is_excluded(path):
        name = path.rpartition("/")[2]
        for regex, anchored in compiled:
            if regex.fullmatch(path if anchored else name) or (anchored and regex.fullmatch(path + "/")):
                return True
        return False

    return is_excluded


def glob_to_regex(pattern):
    """Return (regex, anchored): anchored patterns match the whole relative path."""
    pattern = pattern.strip()
    anchored = "/" in pattern.rstrip("/")
    pattern = pattern.lstrip("/").rstrip("/")
    out, position = [], 0
    while position < len(pattern):
        char = pattern[position]
        if pattern.startswith("**/", position):
            out.append("(?:.*/)?")
            position += 3
            continue
        if pattern.startswith("**", position):
            out.append(".*")
            position += 2
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", position + 1)
            if end == -1:
                out.append(re.escape(char))
            else:
                body = pattern[position + 1:end].replace("\\", "\\\\")
                if body.startswith("!"):
                    body = "^" + body[1:]
                out.append(f"[{body}]")
                position = end
        else:
            out.append(re.escape(char))
        position += 1
    return re.compile("".join(out), re.DOTALL), anchored
