"""Static analysis of one code cell: what each top-level statement reads, binds, mutates and imports.

One ``ast.parse`` and one visitor pass per cell. Cells with IPython syntax (magics, ``!shell``, ``x?``)
are converted by IPython first (see ``magics``); lines always refer to the original cell source.
The walker is in ``walker`` (names, aliases, in-place changes, function bodies) and ``calls`` (imports,
calls); Python's scoping rules (which scope a name lives in, what is surely bound) are in ``scopes``;
what it records is in ``facts``. Reads are conservative: a name bound on only some paths of a statement
still counts as read after it.
"""
from __future__ import annotations

from same_nb.frontend import magics
from same_nb.frontend.callees import MUTATING_METHODS, PURE_BUILTINS
from same_nb.frontend.facts import CellAnalysis, Finding, FunctionInfo, ImportInfo, Mutation, OpaqueCall, Statement
from same_nb.frontend.walker import StatementWalker

__all__ = ["CellAnalysis", "Finding", "FunctionInfo", "ImportInfo", "MUTATING_METHODS", "Mutation", "OpaqueCall",
           "PURE_BUILTINS", "Statement", "analyze_cell"]


def analyze_cell(source: str) -> CellAnalysis:
    """Analyze one code cell. Never raises: code that cannot be parsed gives an error Finding."""
    result = CellAnalysis()
    try:
        _analyze_into(result, source.replace("\r\n", "\n").replace("\r", "\n"), offset=0, timeit=False)
    except (RecursionError, MemoryError):  # the parser and the walker give up on extremely deep nesting
        result.findings.append(Finding(1, "too-complex", "the cell is nested too deeply to analyze", "error"))
    return result


def _analyze_into(result: CellAnalysis, source: str, offset: int, timeit: bool) -> None:
    magic = magics.find_cell_magic(source)
    if magic is not None:
        _analyze_cell_magic(result, magic, offset, timeit)
        return
    try:
        tree, line_map = magics.parse_cell(source)
    except magics.Unparsable as error:
        result.findings.append(Finding(error.line + offset, "syntax-error", error.message, "error"))
        return
    body = tree.body
    if timeit and body:
        body = [magics.TimeitBlock(body=body, lineno=1, col_offset=0)]
    walker = StatementWalker(result, line_map, offset)
    result.statements.extend(walker.statement(node) for node in body)


def _analyze_cell_magic(result: CellAnalysis, magic: magics.CellMagic, offset: int, timeit: bool) -> None:
    line = offset + magic.line
    if magic.name == "timeit":
        # The setup code on the %%timeit line runs with the body, in the same function.
        _analyze_into(result, magics.timeit_code(magic.args) + "\n" + magic.body, line - 1, timeit=True)
    elif magic.name in magics.CODE_CELL_MAGICS:
        _analyze_into(result, magic.body, line, timeit)
        target = magics.capture_target(magic.args) if magic.name == "capture" else None
        if target:  # bound once the body has run
            result.statements.append(Statement(line, binds=[target]))
    else:  # other cell magics run their body as something other than Python
        outputs = magics.script_outputs(magic.name, magic.args)
        if outputs:
            result.statements.append(Statement(line, binds=outputs))
        if magic.name == "writefile":
            result.findings.append(Finding(line, "writefile", f"%%writefile writes {magic.args or 'a file'}; "
                                           "code that later imports or reads it is not linked to this cell"))


