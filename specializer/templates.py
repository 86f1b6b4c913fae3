"""C kernel templates: real C files with holes (`.c.in`), expanded by a small preprocessor.

How it works
1. A template is C text. Lines whose first non-blank character is `$` are directives:
       $for NAME in EXPR:      ...      $endfor
       $if EXPR:   ...   $elif EXPR:   ...   $else:   ...   $endif
       $assert EXPR[, "message"]        (checks the legal parameter space; failure raises TemplateError)
       $# comment                       (dropped)
   Anywhere else `${EXPR}` is replaced by the value of a Python expression over the template arguments.
2. The template is compiled once into a Python function that appends lines to a list (cached per content), then
   called with the arguments. Expressions see the arguments, `range`, `min`, `max`, `len`, `abs` and a few
   helpers (`hex`, `cint` for C integer literals).
3. Errors name the template and the line.
"""
from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any, Mapping

_SUBST = re.compile(r"\$\{([^}]*)\}")
_DIRECTIVE = re.compile(r"^\s*\$(for|if|elif|else|endfor|endif|assert|#)(?![A-Za-z0-9_{])(.*)$")


class TemplateError(Exception):
    pass


def cint(v: int) -> str:
    """A C integer literal valid for the whole int32 range (INT32_MIN needs an expression)."""
    v = int(v)
    if v == -(1 << 31):
        return "(-2147483647 - 1)"
    return str(v)


_GLOBALS = {"range": range, "min": min, "max": max, "len": len, "abs": abs, "enumerate": enumerate,
            "zip": zip, "hex": hex, "cint": cint, "str": str, "int": int, "sorted": sorted, "any": any,
            "all": all, "__builtins__": {}}


@functools.lru_cache(maxsize=None)
def _compile(path: str, text: str) -> Any:
    out = ["def __render(__emit):"]
    depth = 1
    stack = []

    def ind():
        return "    " * depth

    for lineno, line in enumerate(text.splitlines(), 1):
        m = _DIRECTIVE.match(line)
        if m:
            kw, rest = m.group(1), m.group(2).strip()
            if kw == "#":
                continue
            if kw == "for":
                out.append(f"{ind()}for {rest.rstrip(':')}:")
                stack.append(("for", lineno))
                depth += 1
            elif kw == "if":
                out.append(f"{ind()}if {rest.rstrip(':')}:")
                stack.append(("if", lineno))
                depth += 1
            elif kw == "elif":
                if not stack or stack[-1][0] != "if":
                    raise TemplateError(f"{path}:{lineno}: $elif without $if")
                out.append(f"{'    ' * (depth - 1)}elif {rest.rstrip(':')}:")
                out.append(f"{ind()}pass")
            elif kw == "else":
                if not stack or stack[-1][0] != "if":
                    raise TemplateError(f"{path}:{lineno}: $else without $if")
                out.append(f"{'    ' * (depth - 1)}else:")
                out.append(f"{ind()}pass")
            elif kw in ("endfor", "endif"):
                want = kw[3:]
                if not stack or stack[-1][0] != want:
                    raise TemplateError(f"{path}:{lineno}: ${kw} does not close a ${want}")
                stack.pop()
                out.append(f"{ind()}pass")
                depth -= 1
            elif kw == "assert":
                out.append(f"{ind()}__assert({lineno}, {rest})")
            continue
        parts = []
        pos = 0
        for sm in _SUBST.finditer(line):
            parts.append(repr(line[pos:sm.start()]))
            parts.append(f"str({sm.group(1)})")
            pos = sm.end()
        parts.append(repr(line[pos:]))
        out.append(f"{ind()}__emit({' + '.join(parts)}, {lineno})")
    if stack:
        raise TemplateError(f"{path}:{stack[-1][1]}: unclosed ${stack[-1][0]}")
    src = "\n".join(out) + "\n"
    try:
        return compile(src, path, "exec")
    except SyntaxError as e:
        raise TemplateError(f"{path}: bad expression in template ({e.msg})") from None


def render(path: Path | str, args: Mapping[str, Any]) -> str:
    """Expand template `path` with `args`. Raises TemplateError naming the template and line."""
    path = str(path)
    code = _compile(path, Path(path).read_text())
    lines: list[str] = []

    def emit(s: str, lineno: int) -> None:
        lines.append(s)

    def _assert(lineno: int, cond: Any, msg: str = "") -> None:
        if not cond:
            raise TemplateError(f"{path}:{lineno}: template assertion failed {msg}".rstrip())

    ns: dict[str, Any] = dict(_GLOBALS)
    ns.update(args)
    ns["__assert"] = _assert
    try:
        exec(code, ns)
        ns["__render"](emit)
    except TemplateError:
        raise
    except Exception as e:
        raise TemplateError(f"{path}: {type(e).__name__}: {e}") from None
    return "\n".join(lines) + "\n"
