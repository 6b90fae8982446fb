"""Parse CloudWatch Logs Insights query text into the syntax tree of :mod:`dashcam.query.ast`.

The grammar lives in ``grammar.lark`` (LALR(1), contextual lexer); this module builds the Lark
parser once, turns Lark's tree into frozen ``ast`` dataclasses, and translates every Lark error
into a :class:`~dashcam.errors.QuerySyntaxError` that says, in plain words, what was found and
what was expected, with a 1-based line and column.

The parser checks syntax only.  Function names and arities, where ``SOURCE`` may appear and
what a command may follow are the compiler's business.
"""

from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token, Tree, v_args
from lark.exceptions import LarkError, UnexpectedCharacters, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from dashcam.errors import QuerySyntaxError
from dashcam.query import ast

__all__ = ["parse", "MAX_QUERY_LENGTH", "MAX_NESTING"]

MAX_QUERY_LENGTH = 10_000
"""CloudWatch's limit on ``StartQuery.queryString``."""

MAX_NESTING = 200
"""Deepest syntax tree accepted, so that recursive code walking the AST stays far from Python's
recursion limit (``a + b + c ...`` with hundreds of terms is not a real query)."""

_GRAMMAR = Path(__file__).with_name("grammar.lark")


@lru_cache(maxsize=1)
def _lark() -> Lark:
    """The Lark parser, built on first use and shared afterwards (Lark parsers are reentrant)."""
    return Lark(
        _GRAMMAR.read_text(encoding="utf-8"),
        parser="lalr",
        lexer="contextual",
        propagate_positions=True,
        maybe_placeholders=True,
        lexer_callbacks={"NAME": _reserve_keywords},
    )


# Words that can never be a bare field name or alias (backtick them: `desc`).  The contextual
# lexer would otherwise read `by` as a field wherever the keyword cannot appear, so that
# `stats count(*) by by` would parse.  Command names stay usable as field names.
_RESERVED = {"and", "or", "not", "in", "like", "as", "by", "asc", "desc", "into"}


def _reserve_keywords(token: Token) -> Token:
    """Lexer callback: retype a NAME that is a reserved word, so the parser rejects it there."""
    if token.value.lower() in _RESERVED:
        return Token.new_borrow_pos(token.value.upper(), token.value, token)
    return token


def parse(text: str) -> ast.Query:
    """Parse Logs Insights text into a Query; raise QuerySyntaxError (line, column, expected) on bad input."""
    if len(text) > MAX_QUERY_LENGTH:
        line, column = _position(text, MAX_QUERY_LENGTH)
        raise QuerySyntaxError("query is longer than 10,000 characters", line=line, column=column)
    if _is_blank(text):
        raise QuerySyntaxError("the query is empty; expected a command", line=1, column=1,
                               expected=(_COMMAND_WORDS,))
    try:
        tree = _lark().parse(text)
    except UnexpectedInput as exc:
        raise _translate(exc, text) from None
    except LarkError as exc:  # pragma: no cover - Lark raises UnexpectedInput for bad text
        raise QuerySyntaxError(f"cannot parse the query ({type(exc).__name__})", line=1, column=1) from None
    _check_nesting(tree)
    try:
        commands = _ToAst(text).transform(tree)
    except VisitError as exc:
        if isinstance(exc.orig_exc, QuerySyntaxError):
            raise exc.orig_exc from None
        raise
    return ast.Query(commands=commands, text=text, line=1, column=1)


def _is_blank(text: str) -> bool:
    """Nothing but whitespace and ``#`` comments (line by line: a regex would backtrack badly)."""
    return all(not line.strip() or line.lstrip().startswith("#") for line in text.split("\n"))


def _position(text: str, offset: int) -> tuple[int, int]:
    """1-based (line, column) of character ``offset``, counting lines the way Lark does."""
    line = text.count("\n", 0, offset) + 1
    return line, offset - text.rfind("\n", 0, offset)


def _check_nesting(tree: Tree) -> None:
    """Refuse trees deeper than MAX_NESTING (walked iteratively: the input may be very deep)."""
    stack = [(tree, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_NESTING:
            raise QuerySyntaxError(
                f"expression is nested too deeply (more than {MAX_NESTING} levels)",
                line=getattr(node.meta, "line", 1), column=getattr(node.meta, "column", 1),
            )
        stack.extend((child, depth + 1) for child in node.children if isinstance(child, Tree))


# ---------------------------------------------------------------- tree -> ast

_UNITS = {
    "ms": "ms", "msec": "ms", "millisecond": "ms",
    "s": "s", "sec": "s", "second": "s",
    "m": "m", "min": "m", "minute": "m",
    "h": "h", "hr": "h", "hour": "h",
    "d": "d", "day": "d",
    "w": "w", "week": "w",
    "mo": "mo", "mon": "mo", "month": "mo",
    "q": "q", "qtr": "q", "quarter": "q",
    "y": "y", "yr": "y", "year": "y",
}
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([a-z]+)")

# Unknown escapes keep their backslash, so `"a\.b"` stays `a\.b` for like/regex-minded users.
_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "n": "\n", "t": "\t", "r": "\r", "/": "/"}
_ESCAPE = re.compile(r"\\(.)", re.DOTALL)

_OPS = {"==": "=", "!~": "not_like"}

# A named group `(?<name>...)` / `(?P<name>...)`; not a lookbehind `(?<=` / `(?<!`.
_NAMED_GROUP = re.compile(r"\(\?P?<([A-Za-z_][A-Za-z0-9_]*)>")

# Arguments of `logGroups(...)`.  Only namePrefix selects anything: class/logGroupClass (the
# storage class) and accountIdentifiers (cross-account sources) mean nothing to a local store,
# so they are accepted and ignored.
_LOG_GROUP_ARGS = {"nameprefix": "prefix", "class": None, "loggroupclass": None, "accountidentifiers": None}


def _unquote(token: Token) -> str:
    """The value of a quoted STRING token with its escapes resolved."""
    return _ESCAPE.sub(lambda m: _ESCAPES.get(m[1], "\\" + m[1]), token.value[1:-1])


def _path(token: Token) -> tuple[str, ...]:
    """Path segments of a NAME/BACKTICKED token: split on dots, backticked dotted names too."""
    path: list[str] = []
    for segment in re.findall(r"`[^`]*`|[^.`]+", token.value):
        path.extend(segment[1:-1].split(".") if segment.startswith("`") else [segment])
    if "" in path:
        what = "an empty name in backticks" if token.value == "``" else f"'{token.value}' (an empty part)"
        raise _fail_at(token, f"{what} is not a valid field name", expected=("a field name",))
    return tuple(path)


def _fail_at(token_or_meta, message: str, expected: tuple[str, ...] = ()) -> QuerySyntaxError:
    return QuerySyntaxError(message, line=token_or_meta.line, column=token_or_meta.column, expected=expected)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):
    """Bottom-up rewrite of Lark's tree into ``ast`` nodes (non-recursive: trees may be deep)."""

    def __init__(self, text: str):
        super().__init__()
        self._text = text

    def _at(self, meta) -> dict:
        """``text``/``line``/``column`` keyword arguments for a node built from ``meta``."""
        return {"text": self._text[meta.start_pos:meta.end_pos], "line": meta.line, "column": meta.column}

    # -------------------------------------------------------------- expressions

    def number(self, meta, children):
        raw = children[0].value
        return ast.Literal(float(raw) if "." in raw else int(raw), **self._at(meta))

    def string(self, meta, children):
        return ast.Literal(_unquote(children[0]), **self._at(meta))

    def duration(self, meta, children):
        amount, unit = _DURATION.fullmatch(children[0].value).groups()
        unit = _UNITS.get(unit) or _UNITS[unit[:-1]]  # plural: strip the "s"
        return ast.Duration(float(amount), unit, **self._at(meta))

    def regex(self, meta, children):
        return ast.Regex(children[0].value[1:-1].replace("\\/", "/"), **self._at(meta))

    def field(self, meta, children):
        path = _path(children[0])
        return ast.FieldRef(path, text=".".join(path), line=meta.line, column=meta.column)

    def call(self, meta, children):
        name, args = children
        return ast.Call(name.value.lower(), tuple(args or ()), **self._at(meta))

    def call_star(self, meta, children):
        name, star = children
        star_node = ast.Star(text="*", line=star.line, column=star.column)
        return ast.Call(name.value.lower(), (star_node,), **self._at(meta))

    def args(self, meta, children):
        return tuple(children)

    def items(self, meta, children):
        return tuple(children)

    def paren(self, meta, children):
        # The parentheses belong to the text as written: `(sum(x) / count(*))` names a column.
        return replace(children[0], **self._at(meta))

    def binary(self, meta, children):
        left, op, right = children
        value = op.value.lower()
        return ast.Binary(_OPS.get(value, value), left, right, **self._at(meta))

    def not_like(self, meta, children):
        return ast.Binary("not_like", children[0], children[-1], **self._at(meta))

    def unary(self, meta, children):
        op, operand = children
        return ast.Unary("-" if op.type == "MINUS" else "not", operand, **self._at(meta))

    def in_list(self, meta, children):
        return ast.InList(children[0], children[-1], negated=False, **self._at(meta))

    def not_in_list(self, meta, children):
        return ast.InList(children[0], children[-1], negated=True, **self._at(meta))

    # -------------------------------------------------------------- projections

    def projection(self, meta, children):
        expr, alias = children
        return ast.Projection(expr, alias, **self._at(meta))

    def alias(self, meta, children):
        return self._name(children[1])

    def projections(self, meta, children):
        return tuple(children)

    def _name(self, token: Token) -> str:
        """A name after ``as``/``into``: as written, backticks removed."""
        return ".".join(_path(token))

    # -------------------------------------------------------------- commands

    def start(self, meta, children):
        return tuple(children)

    def fields_cmd(self, meta, children):
        return ast.Fields(children[1], **self._at(meta))

    def display_cmd(self, meta, children):
        return ast.Display(children[1], **self._at(meta))

    def filter_cmd(self, meta, children):
        return ast.Filter(children[1], **self._at(meta))

    def stats_cmd(self, meta, children):
        _, aggregates, by = children
        return ast.Stats(aggregates, by or (), **self._at(meta))

    def stats_by(self, meta, children):
        return children[1]

    def sort_cmd(self, meta, children):
        return ast.Sort(tuple(children[1:]), **self._at(meta))

    def sort_key(self, meta, children):
        expr, direction = children
        descending = None if direction is None else direction.type == "DESC"
        return ast.SortKey(expr, descending, **self._at(meta))

    def limit_cmd(self, meta, children):
        number = children[1]
        if not number.value.isdigit():
            raise _fail_at(number, f"limit needs a whole number of rows, not '{number.value}'",
                           expected=("a whole number",))
        return ast.Limit(int(number.value), **self._at(meta))

    def dedup_cmd(self, meta, children):
        return ast.Dedup(tuple(children[1:]), **self._at(meta))

    def unnest_cmd(self, meta, children):
        _, source, _into, name = children
        return ast.Unnest(source, self._name(name), **self._at(meta))

    def parse_source(self, meta, children):
        return self.field(meta, children)

    def parse_names(self, meta, children):
        return children[1:]

    def _parse_source(self, meta, source):
        if source is not None:
            return source
        return ast.FieldRef(("@message",), text="@message", line=meta.line, column=meta.column)

    def parse_glob(self, meta, children):
        _, source, pattern_token, names = children
        pattern = _unquote(pattern_token)
        stars = pattern.count("*")
        if stars == 0:
            raise _fail_at(pattern_token, "the parse pattern has no '*' to capture")
        if names is None:
            raise _fail_at(pattern_token, f"the parse pattern has {stars} '*'; expected 'as' and "
                           f"{stars} name{'s' if stars > 1 else ''} after it", expected=("'as'",))
        if len(names) != stars:
            count = f"{len(names)} names follow" if len(names) > 1 else "1 name follows"
            raise _fail_at(names[0], f"the parse pattern has {stars} '*' but {count} 'as'; "
                           "there must be one name per '*'")
        values = tuple(self._name(token) for token in names)
        self._no_duplicates(names, values)
        return ast.Parse(self._parse_source(meta, source), pattern, False, values, **self._at(meta))

    def parse_regex(self, meta, children):
        _, source, regex_token = children
        pattern = regex_token.value[1:-1].replace("\\/", "/")
        names = _named_groups(pattern)
        if not names:
            raise _fail_at(regex_token, "the parse regex has no named group such as (?<name>...) "
                           "to capture into a field")
        self._no_duplicates([regex_token] * len(names), names)
        return ast.Parse(self._parse_source(meta, source), pattern, True, tuple(names), **self._at(meta))

    @staticmethod
    def _no_duplicates(tokens, names) -> None:
        seen = set()
        for token, name in zip(tokens, names):
            if name in seen:
                raise _fail_at(token, f"parse names the field '{name}' twice")
            seen.add(name)

    def source_cmd(self, meta, children):
        names: list[str] = []
        prefixes: list[str] = []
        for kind, values in children[1:]:
            (names if kind == "name" else prefixes).extend(values)
        return ast.Source(tuple(names), tuple(prefixes), **self._at(meta))

    def source_name(self, meta, children):
        return "name", [_unquote(children[0])]

    def log_groups(self, meta, children):
        prefixes: list[str] = []
        for arg in children[1:]:
            if arg is not None:
                prefixes.extend(arg)
        return "prefix", prefixes

    def lg_arg(self, meta, children):
        key, value = children
        if key.value.lower() not in _LOG_GROUP_ARGS:
            raise _fail_at(key, f"unknown logGroups argument '{key.value}'",
                           expected=("namePrefix", "class", "logGroupClass", "accountIdentifiers"))
        if _LOG_GROUP_ARGS[key.value.lower()] is None:
            return []
        tokens = value if isinstance(value, list) else [value]
        for token in tokens:
            if token.type != "STRING":
                raise _fail_at(token, f"unexpected '{token.value}'; namePrefix takes quoted strings",
                               expected=("a string",))
        return [_unquote(token) for token in tokens]

    def lg_list(self, meta, children):
        return [token for token in children if token is not None]


def _named_groups(pattern: str) -> list[str]:
    """Named capture groups of a regex, in order, skipping escapes and character classes."""
    names: list[str] = []
    i, in_class = 0, False
    while i < len(pattern):
        char = pattern[i]
        if char == "\\":
            i += 2
            continue
        if in_class:
            in_class = char != "]"
        elif char == "[":
            in_class = True
            if pattern.startswith("]", i + 1) or pattern.startswith("^]", i + 1):
                i = pattern.index("]", i + 1)  # a leading ']' is literal
        elif char == "(":
            match = _NAMED_GROUP.match(pattern, i)
            if match:
                names.append(match[1])
        i += 1
    return names


# ---------------------------------------------------------------- errors

_COMMANDS = ("FIELDS", "DISPLAY", "FILTER", "STATS", "SORT", "LIMIT", "PARSE", "DEDUP", "UNNEST", "SOURCE")
_COMMAND_WORDS = "a command (fields, display, filter, stats, sort, limit, parse, dedup, unnest, SOURCE)"
_OPERAND_START = {"NAME", "BACKTICKED", "NUMBER", "STRING", "DURATION", "REGEX", "_LPAR", "MINUS", "NOT", "BANG"}
_CORE_OPERAND = {"NAME", "NUMBER", "STRING", "_LPAR"}
_OPERATORS = {"OR", "AND", "NOT", "IN", "LIKE", "EQ", "EQEQ", "NE", "LT", "LE", "GT", "GE", "MATCH", "NOMATCH",
              "PLUS", "MINUS", "STAR", "SLASH", "PERCENT", "CARET"}
_AFTER_OPERAND = {"PLUS", "STAR", "CARET", "EQ"}  # all present only right after an operand

# Readable names of the terminals, in the order they are listed in messages.
_WORDS = {
    "NAME": "a field name", "BACKTICKED": "a field name", "STRING": "a string", "REGEX": "a regex",
    "NUMBER": "a number", "DURATION": "a time period such as 5m",
    "LOGGROUPS": "'logGroups'", "STAR": "'*'", "_LPAR": "'('", "_RPAR": "')'", "_LSQB": "'['",
    "_RSQB": "']'", "_COLON": "':'", "_COMMA": "','", "_PIPE": "'|'",
    "AS": "'as'", "BY": "'by'", "ASC": "'asc'", "DESC": "'desc'", "INTO": "'into'",
    "OR": "'or'", "AND": "'and'", "NOT": "'not'", "BANG": "'!'", "IN": "'in'", "LIKE": "'like'",
    "EQ": "'='", "EQEQ": "'=='", "NE": "'!='", "LT": "'<'", "LE": "'<='", "GT": "'>'", "GE": "'>='",
    "MATCH": "'=~'", "NOMATCH": "'!~'", "PLUS": "'+'", "MINUS": "'-'", "SLASH": "'/'",
    "PERCENT": "'%'", "CARET": "'^'",
    **{name: f"'{name.lower() if name != 'SOURCE' else name}'" for name in _COMMANDS},
}
_ORDER = ["an expression", _COMMAND_WORDS, *dict.fromkeys(_WORDS.values()), "an operator", "end of query"]


def _expected(names) -> tuple[str, ...]:
    """Readable, ordered, de-duplicated descriptions of a set of Lark terminal names."""
    names = set(names)
    words: set[str] = set()
    if _AFTER_OPERAND <= names:  # right after an operand: any operator would do
        names -= _OPERATORS | {"_LPAR"}  # '(' there only continues a function name
        words.add("an operator")
    if _CORE_OPERAND <= names:
        names -= _OPERAND_START
        words.add("an expression")
    if set(_COMMANDS) <= names:
        names -= set(_COMMANDS)
        words.add(_COMMAND_WORDS)
    if "$END" in names:
        names.discard("$END")
        words.add("end of query")
    words.update(_WORDS.get(name, "something else") for name in names)
    return tuple(sorted(words, key=lambda w: _ORDER.index(w) if w in _ORDER else len(_ORDER)))


def _expecting(expected: tuple[str, ...]) -> str:
    if not expected:
        return ""
    if len(expected) == 1:
        return f"; expected {expected[0]}"
    return "; expected one of: " + ", ".join(expected)


def _shorten(value: str) -> str:
    return value if len(value) <= 30 else value[:27] + "..."


def _shown(value: str) -> str:
    """A token as quoted in a message, shortened when long, invisible characters escaped."""
    value = _shorten(value)
    if not value.isprintable() or ("'" in value and '"' in value):
        return repr(value)
    return f"'{value}'" if "'" not in value else f'"{value}"'


def _acceptable(text: str, stop: int) -> set[str]:
    """Terminals the parser accepts just before offset ``stop``, computed on a fresh parse.

    The state Lark reports with an error may be LALR-merged (accepting `)` or `by` where they
    cannot follow) or already reduced by the offending token, so re-parse up to it and ask.
    """
    interactive = _lark().parse_interactive(text)
    try:
        for token in interactive.iter_parse():
            if token.start_pos >= stop:
                break
    except UnexpectedInput:
        pass  # the failure at `stop` itself; the state is the one before it
    return interactive.accepts()


def _translate(exc: UnexpectedInput, text: str) -> QuerySyntaxError:
    """Turn any Lark parse failure into a QuerySyntaxError in plain words."""
    line, column = exc.line, exc.column
    if isinstance(exc, UnexpectedCharacters):
        accepted = _acceptable(text, exc.pos_in_stream)
        expected = _expected(accepted)
        char = exc.char
        unterminated = {'"': "string", "'": "string", "`": "backticked name"}.get(char)
        if unterminated:
            message = f"unterminated {unterminated}: no closing {char} on this line"
            expected = (f"a closing {char}",)
        else:
            message = f"unexpected character {_shown(char)}" + _expecting(expected)
        return QuerySyntaxError(message, line=line, column=column, expected=expected)
    if isinstance(exc, UnexpectedToken):
        token = exc.token
        at_end = token.type == "$END"
        accepted = _acceptable(text, len(text) + 1 if at_end else token.start_pos)
        expected = _expected(accepted)
        if at_end:
            end = token.end_pos if token.end_pos is not None else len(text)
            line, column = _position(text, end)
            after = " after '|'" if text[:end].endswith("|") else ""
            return QuerySyntaxError(f"unexpected end of query{after}" + _expecting(expected),
                                    line=line, column=column, expected=expected)
        if token.type == "SLASH" and "REGEX" in accepted:
            return QuerySyntaxError("unterminated regex: no closing / on this line",
                                    line=line, column=column, expected=("a closing /",))
        if expected == (_COMMAND_WORDS,) and token.type == "NAME":
            return QuerySyntaxError(f"unknown command {_shown(token.value)}" + _expecting(expected),
                                    line=line, column=column, expected=expected)
        found = f"string {_shorten(token.value)}" if token.type == "STRING" else _shown(token.value)
        return QuerySyntaxError(f"unexpected {found}" + _expecting(expected),
                                line=line, column=column, expected=expected)
    return QuerySyntaxError("cannot parse the query", line=line or 1, column=column or 1)
