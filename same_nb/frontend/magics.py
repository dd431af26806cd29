"""IPython syntax in a code cell: cell magics, conversion to plain Python, and what `pip install` lines install.

IPython is imported only when a cell actually needs converting; its import costs ~0.3 s.
"""
from __future__ import annotations

import ast
import functools
import re
import shlex
import string
from dataclasses import dataclass, field
from typing import Any

# Cell magics whose body IPython runs as ordinary code in the user namespace (timeit: in a function).
CODE_CELL_MAGICS = frozenset({"time", "timeit", "capture"})
# Script magics (`%%bash --out x`) bind their captured streams to the names given.
SCRIPT_MAGICS = frozenset({"bash", "sh", "script", "python", "python2", "python3", "pypy", "perl", "ruby"})
SCRIPT_OUTPUT_OPTIONS = ("--out", "--err", "--proc")

# `pip install` options that take a value as the next token.
_PIP_VALUE_OPTIONS = frozenset({
    "-c", "--constraint", "-i", "--index-url", "--extra-index-url", "-f", "--find-links", "-t", "--target",
    "--prefix", "--root", "--upgrade-strategy", "--only-binary", "--no-binary", "--platform",
    "--python-version", "--implementation", "--abi", "--src", "-C", "--config-settings", "--trusted-host",
    "--cache-dir", "--log", "--proxy", "--retries", "--timeout", "--progress-bar", "--report",
    "--exists-action", "--global-option", "--install-option", "--python", "--group",
})
_PIP_PATH_OPTIONS = ("-r", "--requirement", "-e", "--editable")
_SHELL_OPERATORS = frozenset({"&&", "||", ";", "|", "&"})
_PIP_COMMAND = re.compile(r"(?:^|[/\\])pip(?:3(?:\.\d+)?)?$")
# %timeit options (-n N, -r R, -p P take a value; -t -c -q -o are flags), before the timed code.
_TIMEIT_OPTIONS = re.compile(r"^\s*(?:(?:-[tcqo]*[nrp]\s*\d+|-[tcqo]+)(?:\s+|$))*")
# A line starting with %, ! or ?, an assigned `= %magic` / `= !cmd`, or a line ending in `?` (help).
_IPYTHON_SYNTAX = re.compile(r"^[ \t]*[%!?]|=[ \t]*[%!]|\?[ \t]*$", re.MULTILINE)
_DOLLAR_NAME = re.compile(r"(?<!\$)\$([A-Za-z_]\w*)")
_OPAQUE_MAGICS = {
    "run": "%run executes another file in the notebook's namespace; what it reads and binds is not tracked",
    "reset": "%reset deletes variables; the analysis does not track which",
}
# Magics whose result is the kernel's namespace: a step's kernel holds only what that step loads and binds.
_NAMESPACE_MAGICS = frozenset({"who", "who_ls", "whos"})


class Unparsable(Exception):
    """Neither Python nor IPython can parse the cell; ``line`` is in the original cell source."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class TimeitBlock(ast.stmt):
    """Code run by %timeit: IPython runs it inside a function, so it binds nothing at top level."""
    _fields = ("body",)


@dataclass
class CellMagic:
    name: str        # "time" for %%time
    args: str        # the rest of the %%magic line
    line: int        # 1-based line of the %%magic line in the cell
    body: str        # the cell below the %%magic line


def find_cell_magic(source: str) -> CellMagic | None:
    """The cell magic that governs the cell: like IPython, only on its first non-blank line."""
    lines = source.split("\n")
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        text = text.strip()
        if not text.startswith("%%"):
            return None
        name, _, args = text[2:].partition(" ")
        return CellMagic(name, args.strip(), number, "\n".join(lines[number:]))
    return None


def parse_cell(source: str) -> tuple[ast.Module, list[int] | None]:
    """The cell's AST and, if IPython had to convert it, the original line of each converted line.

    `%time CODE` and `%timeit CODE` come back as CODE itself (in a TimeitBlock for %timeit).
    Raises Unparsable.
    """
    try:
        return ast.parse(source), None
    except (SyntaxError, ValueError) as error:
        plain_error = error
    converted = _to_python(source) if _has_ipython_syntax(source) else None
    if converted is None:
        raise Unparsable(getattr(plain_error, "lineno", None) or 1, _message(plain_error))
    code, line_map = converted
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError) as error:
        lineno = getattr(error, "lineno", None) or 1
        raise Unparsable(line_map[min(lineno, len(line_map)) - 1], _message(error)) from None
    return _InlineTimeMagics().visit(tree), line_map


def _message(error: Exception) -> str:
    return f"syntax error: {error.msg if isinstance(error, SyntaxError) else error}"


def _has_ipython_syntax(source: str) -> bool:
    """Whether IPython could make sense of a cell Python cannot parse; `10 % 3` or `!=` alone don't count."""
    return source.lstrip("\n")[:1] in (" ", "\t") or _IPYTHON_SYNTAX.search(source) is not None


@functools.cache
def _transformer() -> Any:
    from IPython.core.inputtransformer2 import TransformerManager
    return TransformerManager()


def _to_python(source: str) -> tuple[str, list[int]] | None:
    try:
        code = _transformer().transform_cell(source)
    except Exception:  # IPython's tokenizer gives up on some broken input; the caller reports a syntax error
        return None
    return code, _line_map(source.split("\n"), code.split("\n"))


def _line_map(original: list[str], converted: list[str]) -> list[int]:
    # IPython drops leading blank lines and keeps one line per line after them, except that a magic or
    # shell line continued with a trailing backslash becomes one line; skip the lines it swallowed.
    mapping = []
    index = next((number for number, text in enumerate(original) if text.strip()), 0)
    for text in converted:
        mapping.append(min(index, len(original) - 1) + 1)
        if (index < len(original) and original[index].endswith("\\") and "get_ipython()" in text
                and not original[index].endswith(text)):
            while index < len(original) and original[index].endswith("\\"):
                index += 1
        index += 1
    return mapping


def timeit_code(args: str) -> str:
    """The code in a `%timeit` / `%%timeit` line after its options."""
    return args[_TIMEIT_OPTIONS.match(args).end():]


def capture_target(args: str) -> str | None:
    """The variable `%%capture [--no-stdout ...] NAME` stores the captured output in."""
    names = [token for token in args.split() if not token.startswith("-")]
    return names[0] if names and names[0].isidentifier() else None


def script_outputs(name: str, args: str) -> list[str]:
    """Variables a script magic (`%%bash --out x --err y`) binds."""
    if name not in SCRIPT_MAGICS:
        return []
    tokens = args.split()
    return [value for option, value in zip(tokens, tokens[1:])
            if option in SCRIPT_OUTPUT_OPTIONS and value.isidentifier()]


def expansion_names(command: str) -> list[str]:
    """Python names IPython substitutes into a shell command or magic line (`{expr}`, `$name`)."""
    names: list[str] = []
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(command) if name]
    except ValueError:  # unbalanced braces: IPython passes the command through unexpanded
        fields = []
    for expression in fields:
        try:
            tree = ast.parse(expression.strip(), mode="eval")
        except (SyntaxError, ValueError, RecursionError, MemoryError):
            continue
        loaded = [node for node in ast.walk(tree) if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load)]
        names.extend(node.id for node in sorted(loaded, key=lambda node: node.col_offset))
    # All-caps `$HOME`, `$PATH` are environment variables the shell expands, by convention.
    names.extend(name for name in _DOLLAR_NAME.findall(command) if not name.isupper())
    return list(dict.fromkeys(names))


def pip_install_specs(command: str) -> tuple[list[str], list[str]]:
    """The requirement specs a `pip install ...` command line installs, and problems with it."""
    try:
        tokens = shlex.split(command)
    except ValueError:  # unbalanced quotes
        tokens = command.split()
    specs: list[str] = []
    problems: list[str] = []
    installing = False
    seen_pip = False
    skip_value = False
    for position, token in enumerate(tokens):
        if token in _SHELL_OPERATORS or token.startswith(">"):
            installing = seen_pip = False
            continue
        if not installing:
            seen_pip = seen_pip or bool(_PIP_COMMAND.search(token))
            installing = seen_pip and token == "install"
            continue
        if skip_value:
            skip_value = False
        elif token in _PIP_PATH_OPTIONS or token.startswith(tuple(f"{option}=" for option in _PIP_PATH_OPTIONS)):
            value = token.partition("=")[2] or (tokens[position + 1] if position + 1 < len(tokens) else "")
            kind = "a requirements file" if token.startswith(("-r", "--requirement")) else "an editable path"
            problems.append(f"`pip install` from {kind} ({value or '?'}): its packages are not recorded; "
                            "list them on the pip line or in the environment lock")
            skip_value = "=" not in token
        elif token.startswith("-"):
            skip_value = token in _PIP_VALUE_OPTIONS
        elif "{" in token or "$" in token:
            problems.append(f"`pip install {token}` uses a variable, so the requirement is not recorded")
        else:
            specs.append(token)
    return specs, problems


def ipython_method(node: ast.AST) -> str | None:
    """`system` for `get_ipython().system(...)`, the form IPython converts `!cmd` and magics to."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
        owner = node.func.value
        if isinstance(owner, ast.Call) and isinstance(owner.func, ast.Name) and owner.func.id == "get_ipython":
            return node.func.attr
    return None


@dataclass
class MagicEffects:
    """What a converted `!cmd`, `x = !cmd` or `%magic` line does besides calling IPython."""
    reads: list[str] = field(default_factory=list)          # names substituted into it ({expr}, $name)
    requirements: list[str] = field(default_factory=list)   # pip install specs
    findings: list[tuple[str, str, str]] = field(default_factory=list)  # (code, message, severity)


def magic_effects(method: str, texts: list[str]) -> MagicEffects:
    """The effects of `get_ipython().<method>(*texts)`; texts are its string-literal arguments."""
    effects = MagicEffects()
    if method in ("system", "getoutput") and texts:
        command = texts[0]
    elif method == "run_line_magic" and len(texts) == 2:
        if texts[0] in ("time", "timeit"):  # left unconverted only when its code does not parse
            try:
                parse_cell(timeit_code(texts[1]))
            except Unparsable as error:
                effects.findings.append(("syntax-error", error.message, "error"))
            return effects
        if texts[0] in ("pinfo", "pinfo2", "psearch"):  # `x?` looks x up; it need not exist
            return effects
        if texts[0] in _OPAQUE_MAGICS:
            effects.findings.append(("opaque-magic", _OPAQUE_MAGICS[texts[0]], "warning"))
        if texts[0] in _NAMESPACE_MAGICS:
            # %who and %whos only print; %who_ls returns the list, which code can go on to use.
            effects.findings.append(("namespace-listing", f"%{texts[0]} lists the kernel's variables, but a step's "
                                     "kernel holds only what the step loads and defines, so the list differs from "
                                     "a top-to-bottom run; name the variables you need instead",
                                     "error" if texts[0] == "who_ls" else "warning"))
        command = " ".join(texts)
    else:
        return effects
    effects.reads = expansion_names(command)
    effects.requirements, problems = pip_install_specs(command)
    effects.findings.extend(("pip-install", problem, "warning") for problem in problems)
    return effects


class _InlineTimeMagics(ast.NodeTransformer):
    def visit_Expr(self, node: ast.Expr) -> ast.AST | list[ast.stmt]:
        magic = _time_magic(node.value)
        if magic is None:
            return self.generic_visit(node)
        name, code = magic
        try:
            tree, _ = parse_cell(code)  # IPython converts the code of %time too
        except Unparsable:  # it fails when run; magic_effects reports it
            return node
        body = _relocated(tree, node).body
        if name == "timeit":
            return ast.copy_location(TimeitBlock(body=body), node) if body else []
        return body

    def visit_Call(self, node: ast.Call) -> ast.AST:
        magic = _time_magic(node)
        if magic is None:
            return self.generic_visit(node)
        try:  # `x = %time f(y)`: the magic returns the value of its expression
            return _relocated(ast.parse(magic[1].strip(), mode="eval"), node).body
        except (SyntaxError, ValueError):
            return node


def _time_magic(node: ast.AST) -> tuple[str, str] | None:
    if (ipython_method(node) == "run_line_magic" and len(node.args) == 2
            and all(isinstance(arg, ast.Constant) and isinstance(arg.value, str) for arg in node.args)
            and node.args[0].value in ("time", "timeit")):
        name, code = node.args[0].value, node.args[1].value
        return name, timeit_code(code) if name == "timeit" else code
    return None


def _relocated(tree: ast.AST, where: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if "lineno" in node._attributes:
            node.lineno = node.end_lineno = where.lineno
            node.col_offset, node.end_col_offset = where.col_offset, where.end_col_offset
    return tree
