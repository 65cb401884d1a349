"""Pure: KQL text rewritten before translation, for constructs the translator lacks, and refusals Azure would make.

Each rewrite turns a construct into an equivalent one the translator handles; each check refuses what Log Analytics
refuses (with Kusto's wording where it is known). Works on tokens of our own lexer, never inside string literals or
comments.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Mapping
from dataclasses import dataclass

from collector.errors import QueryError

_TOKEN = re.compile(
    r"""
    (?P<ws>\s+)
  | (?P<comment>//[^\n]*)
  | (?P<str>(?:[hH]?@?)(?:"(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*')|```.*?```)
  | (?P<bracket>\[(?:'[^']*'|"[^"]*")\])
  | (?P<num>\d+(?:\.\d+)?(?:[eE][-+]?\d+)?[a-zA-Z]*)
  | (?P<op>!in~(?![\w])|!in(?![\w])|!has_cs|!has|==|!=|<=|>=|=~|!~|[-+*/%<>=!~|(),;:.\[\]{}])
  | (?P<ident>[A-Za-z_$][\w]*~?)
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


@dataclass(frozen=True)
class Token:
    kind: str
    text: str


def tokens(kql: str) -> list[Token]:
    """The text as tokens; joining their texts gives the text back."""
    out = []
    for m in _TOKEN.finditer(kql):
        kind = m.lastgroup or "other"
        text = m.group()
        if kind == "ident" and text.endswith("~") and text != "in~":
            out.append(Token("ident", text[:-1]))
            out.append(Token("op", "~"))
            continue
        out.append(Token(kind, text))
    return out


def _code(toks: list[Token]) -> list[int]:
    """Positions of the tokens that are not whitespace or comments."""
    return [i for i, t in enumerate(toks) if t.kind not in ("ws", "comment")]


def _closing(toks: list[Token], code: list[int], at: int) -> int:
    """Index into `code` of the parenthesis closing the one at code[at] (or -1)."""
    depth = 0
    for k in range(at, len(code)):
        text = toks[code[k]].text
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
            if depth == 0:
                return k
    return -1


def _top_level_commas(toks: list[Token], code: list[int], start: int, end: int) -> list[int]:
    """Indexes into `code` of commas at depth 0 strictly between code[start] and code[end]."""
    depth, commas = 0, []
    for k in range(start + 1, end):
        text = toks[code[k]].text
        if text in ("(", "[", "{"):
            depth += 1
        elif text in (")", "]", "}"):
            depth -= 1
        elif text == "," and depth == 0:
            commas.append(k)
    return commas


#: Functions whose result is a dynamic array: as the right side of `in`/`has_any` the translator needs it to be
#: typed dynamic, which `todynamic()` makes it (the value is unchanged).
_ARRAY_FUNCTIONS = frozenset({"split", "extract_all", "pack_array", "array_concat", "array_slice", "bag_keys",
                              "array_sort_asc", "array_sort_desc"})
#: The set operators whose right side may be one dynamic array instead of a list of scalars (Kusto's in-operator
#: and has-any-operator pages: "a dynamic array" is accepted).
_SET_OPERATORS = frozenset({"in", "in~", "!in", "!in~", "has_any", "has_all"})


def _array_lets(toks: list[Token], code: list[int]) -> set[str]:
    """Names bound by `let name = <array function>(...)`."""
    names = set()
    for k in range(len(code) - 3):
        a, b, c, d = (toks[code[k + j]] for j in range(4))
        if a.text == "let" and b.kind == "ident" and c.text == "=" and d.text in _ARRAY_FUNCTIONS:
            names.add(b.text)
    return names


def _wrap_set_operands(toks: list[Token]) -> list[Token]:
    """`x in~ (split(s, ","))` -> `x in~ (todynamic(split(s, ",")))`, for every operator of `_SET_OPERATORS`."""
    code = _code(toks)
    arrays = _array_lets(toks, code)
    wraps: list[tuple[int, int]] = []  # (first token, last token) of each operand to wrap
    for k, i in enumerate(code[:-1]):
        if toks[i].text not in _SET_OPERATORS or toks[code[k + 1]].text != "(":
            continue
        close = _closing(toks, code, k + 1)
        if close < 0 or _top_level_commas(toks, code, k + 1, close):
            continue
        first, last = k + 2, close - 1
        if first > last:
            continue
        head = toks[code[first]]
        single_call = (head.text in _ARRAY_FUNCTIONS and first + 1 <= last and toks[code[first + 1]].text == "("
                       and _closing(toks, code, first + 1) == last)
        array_name = first == last and head.text in arrays
        if single_call or array_name:
            wraps.append((code[first], code[last]))
    if not wraps:
        return toks
    out = list(toks)
    for first, last in sorted(wraps, reverse=True):
        out[last + 1:last + 1] = [Token("op", ")")]
        out[first:first] = [Token("ident", "todynamic"), Token("op", "(")]
    return out


def _call_args(toks: list[Token], code: list[int], paren: int) -> tuple[int, list[str]] | None:
    """For the call whose `(` is code[paren]: the index of its `)` and the text of each argument."""
    close = _closing(toks, code, paren)
    if close < 0:
        return None
    bounds = [paren, *_top_level_commas(toks, code, paren, close), close]
    args = ["".join(t.text for t in toks[code[a] + 1:code[b]]).strip() for a, b in itertools.pairwise(bounds)]
    return close, args


def _rewrite_aggregates(toks: list[Token], types: Mapping[str, str]) -> list[Token]:
    """`maxif`/`minif` and `percentiles`/`percentiles_array` in terms of aggregates the translator has."""
    code = _code(toks)
    edits: list[tuple[int, int, str]] = []  # (first token, last token, replacement text)
    for k, i in enumerate(code[:-1]):
        name = toks[i].text.lower() if toks[i].kind == "ident" else ""
        if name not in ("maxif", "minif", "percentiles", "percentiles_array") or toks[code[k + 1]].text != "(":
            continue
        if k > 0 and toks[code[k - 1]].text == ".":  # a member, not a call of ours
            continue
        call = _call_args(toks, code, k + 1)
        if call is None:
            continue
        close, args = call
        if name in ("maxif", "minif") and len(args) == 2:
            # Kusto's maxif/minif: the max/min over the rows where the predicate is true (maxif-aggregation-function
            # page); iff's null branch drops the other rows, as max/min ignore nulls. The null takes the column's
            # type when it is a column we know, so a long stays long.
            value, predicate = args
            null = f"{types.get(value, 'real')}(null)"
            agg = name[:3]
            alias = "" if _aliased(toks, code, k) else f"{name}_{_name_part(value)}="
            edits.append((i, code[close], f"{alias}{agg}(iff({predicate}, {value}, {null}))"))
        elif name == "percentiles" and len(args) >= 2 and not _aliased(toks, code, k):
            # percentiles(x, p1, p2) is percentile(x, p1), percentile(x, p2), columns named percentile_x_p
            # (percentiles-aggregation-function page).
            value = args[0]
            edits.append((i, code[close], ", ".join(f"percentile({value}, {p})" for p in args[1:])))
        elif name == "percentiles_array" and len(args) >= 2:
            # One dynamic array of the percentiles, in the order asked; unnamed, the column is percentiles_x.
            value, points = args[0], args[1:]
            listed = re.fullmatch(r"dynamic\(\s*\[(.*)\]\s*\)", points[0], re.DOTALL) if len(points) == 1 else None
            if listed:  # the form percentiles_array(x, dynamic([p1, p2]))
                points = [p.strip() for p in listed.group(1).split(",") if p.strip()]
            alias = "" if _aliased(toks, code, k) else f"percentiles_{_name_part(value)}="
            inner = ", ".join(f"percentile({value}, {p})" for p in points)
            edits.append((i, code[close], f"{alias}pack_array({inner})"))
    out = list(toks)
    for first, last, text in sorted(edits, reverse=True):
        out[first:last + 1] = [Token("code", text)]
    return out


def _aliased(toks: list[Token], code: list[int], k: int) -> bool:
    return k > 0 and toks[code[k - 1]].text == "="


def _name_part(expression: str) -> str:
    return expression if re.fullmatch(r"[A-Za-z_]\w*", expression) else ""


def _check_table_names(toks: list[Token], tables: Mapping[str, object]) -> None:
    """Kusto names are case-sensitive: `azurediagnostics` is not a table, though DuckDB would resolve it."""
    by_folded = {name.lower(): name for name in tables}
    code = _code(toks)
    for k, i in enumerate(code):
        token = toks[i]
        if token.kind != "ident" or token.text in tables:
            continue
        proper = by_folded.get(token.text.lower())
        if proper is None:
            continue
        if k + 1 < len(code) and toks[code[k + 1]].text in ("=", "("):
            continue  # a name the query defines or calls
        raise QueryError(f"Failed to resolve table or column expression named '{token.text}' "
                         f"(names are case-sensitive: did you mean '{proper}'?)")


_COMPARISONS = frozenset({"==", "!=", "<", ">", "<=", ">="})


def _check_string_number_comparisons(toks: list[Token], types: Mapping[str, str]) -> None:
    """Kusto refuses comparing a string column with a number ("Cannot compare values of types string and long";
    seen in microsoft/BCTech#24); DuckDB would cast the string instead and fail on the first non-number."""
    code = _code(toks)
    assigned = {toks[code[k]].text for k in range(len(code) - 1) if toks[code[k + 1]].text == "="}
    for k in range(1, len(code) - 1):
        op = toks[code[k]].text
        if op not in _COMPARISONS:
            continue
        left, right = toks[code[k - 1]], toks[code[k + 1]]
        for column, literal in ((left, right), (right, left)):
            if (column.kind == "ident" and types.get(column.text) == "string" and column.text not in assigned
                    and literal.kind == "num"):
                number = "real" if re.search(r"[.eE]", literal.text) else "long"
                raise QueryError(f"Cannot compare values of types string and {number}. Try adding explicit casts "
                                 f"(`{column.text} {op} {literal.text}`: {column.text} is a string; "
                                 f"compare with \"{literal.text}\" or use toint({column.text}))")


def column_types(tables: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Column name -> KQL type, for the names whose type is the same in every table that has them."""
    seen: dict[str, set[str]] = {}
    for columns in tables.values():
        for name, kql_type in columns.items():
            seen.setdefault(name, set()).add(kql_type)
    return {name: next(iter(kinds)) for name, kinds in seen.items() if len(kinds) == 1}


def rewrite(kql: str, tables: Mapping[str, Mapping[str, str]]) -> str:
    """`kql` checked as Azure checks it, with the constructs the translator lacks rewritten into ones it has."""
    toks = tokens(kql)
    types = column_types(tables)
    _check_table_names(toks, tables)
    _check_string_number_comparisons(toks, types)
    toks = _wrap_set_operands(toks)
    toks = _rewrite_aggregates(toks, types)
    return "".join(t.text for t in toks)
