"""CloudWatch Logs filter patterns (``FilterLogEvents.filterPattern``): parse, evaluate, compile to SQL.

The forms accepted, as CloudWatch writes them:

- ``""`` (empty or blank): every event.
- Terms: ``ERROR Exception`` (every term), ``"Failed to process"`` (a quoted phrase is one term),
  ``?ERROR ?WARN`` (at least one of the ``?`` terms), ``ERROR -Retrying`` (``-`` excludes).
  A term matches when the message contains it, case-sensitively. Mixed forms combine as
  *all plain terms* and *at least one ``?`` term* (when there are any) and *no ``-`` term*.
- Regex: ``%ERROR|FATAL%`` — the message matches the regex somewhere (RE2 syntax; CloudWatch's
  lookaround and backreferences are refused, as in Logs Insights).
- JSON: ``{ $.field = "value" }`` with selectors ``$.a.b``, ``$.list[0].c``; operators ``=``
  and ``!=`` on strings (``*`` in a string is a wildcard for any text; ``%regex%`` matches a regex)
  and on numbers, ``<`` ``<=`` ``>`` ``>=`` on numbers; ``IS NULL``, ``IS TRUE``, ``IS FALSE``,
  ``EXISTS``, ``NOT EXISTS``; conditions combined with ``&&`` and ``||`` (``&&`` binds tighter)
  and parentheses.

JSON semantics (documented here because CloudWatch's documentation leaves them open): a
comparison only holds for a value of the compared type — ``= "5"`` matches the string ``"5"`` and
``= 5`` the number 5 (or 5.0), never each other — and a missing field never satisfies a
comparison, ``!=`` included; an event whose message is not JSON matches no JSON pattern.
Space-delimited patterns (``[ip, user, ...]``) are not supported yet and are refused clearly.

:func:`parse_filter_pattern` returns a :class:`FilterPattern`, which can both evaluate a message
in Python (:meth:`FilterPattern.matches`) and compile to a sqlglot condition over the ``message``
column for any :class:`~dashcam.query.dialects.Dialect` (:meth:`FilterPattern.to_sql`); the two
agree by construction and by test. User text reaches SQL only as string literals.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Union

import orjson
from sqlglot import exp

from dashcam.errors import InputError
from dashcam.query.dialects import Dialect, and_, col, is_null, lit, not_null, or_, paren, try_cast
from dashcam.query.compiler import translate_regex

MAX_PATTERN_LENGTH = 1024  # FilterLogEvents.filterPattern, per the AWS API model

_MISSING = object()
# Characters with a meaning in RE2 outside a character class; everything else is itself.
_RE_SPECIAL = set("\\.+*?()|[]{}^$")


class FilterPatternError(InputError):
    """A filter pattern that does not parse; the message names the 1-based column."""

    def __init__(self, message: str, column: int) -> None:
        self.column = column
        super().__init__(f"invalid filter pattern at column {column}: {message}")


# ---------------------------------------------------------------------- syntax tree


@dataclass(frozen=True)
class Terms:
    """Unstructured terms: all ``required``, at least one of ``optional`` (if any), no ``excluded``."""

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()
    excluded: tuple[str, ...] = ()


@dataclass(frozen=True)
class MessageRegex:
    """``%regex%`` over the whole message: ``pattern`` as written, ``re2`` as the engine runs it."""

    pattern: str
    re2: str


@dataclass(frozen=True)
class Wildcard:
    """A string value with ``*`` wildcards: ``parts`` are the literal pieces between them."""

    parts: tuple[str, ...]

    def regex(self) -> str:
        """The whole-value RE2 / Python regex for this wildcard string."""
        return "(?s)" + ".*".join("".join("\\" + c if c in _RE_SPECIAL else c for c in p) for p in self.parts)


Value = Union[str, float, Wildcard, MessageRegex]


@dataclass(frozen=True)
class Compare:
    """``selector op value``; ``value`` is a str, a float, a :class:`Wildcard` or a regex."""

    path: tuple[str | int, ...]
    op: str
    value: Value


@dataclass(frozen=True)
class Check:
    """``selector IS NULL|TRUE|FALSE``, ``EXISTS``, ``NOT EXISTS`` (``what`` in lower case, ``not_exists``)."""

    path: tuple[str | int, ...]
    what: str


@dataclass(frozen=True)
class Logical:
    """``&&`` (``op`` = ``and``) or ``||`` (``or``) over two or more conditions."""

    op: str
    items: tuple["JsonExpr", ...]


JsonExpr = Union[Compare, Check, Logical]


@dataclass(frozen=True)
class JsonPattern:
    """``{ ... }``: a condition on the event's JSON."""

    expr: JsonExpr


Node = Union[Terms, MessageRegex, JsonPattern, None]


# ---------------------------------------------------------------------- the pattern


@dataclass(frozen=True)
class FilterPattern:
    """A parsed filter pattern; ``root`` is None for the empty pattern (every event matches)."""

    text: str
    root: Node

    def matches(self, message: str) -> bool:
        """Whether an event with this ``message`` matches (Python evaluation, same rules as SQL)."""
        root = self.root
        if root is None:
            return True
        if isinstance(root, Terms):
            return (all(t in message for t in root.required)
                    and (not root.optional or any(t in message for t in root.optional))
                    and not any(t in message for t in root.excluded))
        if isinstance(root, MessageRegex):
            return re.search(_python_regex(root.re2), message) is not None
        try:
            doc = orjson.loads(message)
        except orjson.JSONDecodeError:
            return False
        return _eval(root.expr, doc)

    def to_sql(self, dialect: Dialect, message: exp.Expression | None = None) -> exp.Expression | None:
        """A boolean SQL condition over ``message`` (default: the ``message`` column); None = all events."""
        m = message if message is not None else col("message")
        root = self.root
        if root is None:
            return None
        if isinstance(root, Terms):
            conds = [dialect.contains(m, lit(t)) for t in root.required]
            if root.optional:
                conds.append(or_(*[dialect.contains(m, lit(t)) for t in root.optional]))
            conds += [exp.Not(this=paren(dialect.contains(m, lit(t)))) for t in root.excluded]
            return and_(*conds)
        if isinstance(root, MessageRegex):
            return dialect.regex_match(m, root.re2)
        return _sql(root.expr, dialect, m)


def parse_filter_pattern(text: str | None) -> FilterPattern:
    """Parse a CloudWatch filter pattern (see the module docstring); FilterPatternError when malformed."""
    text = text or ""
    if len(text) > MAX_PATTERN_LENGTH:
        raise FilterPatternError(f"a pattern is at most {MAX_PATTERN_LENGTH} characters", MAX_PATTERN_LENGTH + 1)
    stripped = text.strip()
    if not stripped:
        return FilterPattern(text, None)
    start = len(text) - len(text.lstrip())
    first = stripped[0]
    if first == "{":
        return FilterPattern(text, JsonPattern(_JsonParser(text, start).parse()))
    if first == "[":
        raise FilterPatternError("space-delimited patterns ([...]) are not supported; "
                                 "use terms, %regex% or a JSON pattern { $.field = value }", start + 1)
    if first == "%" and stripped.endswith("%") and len(stripped) > 1:
        regex = _message_regex(stripped, start)
        if regex is not None:
            return FilterPattern(text, regex)
    return FilterPattern(text, _parse_terms(text))


# ---------------------------------------------------------------------- terms


def _message_regex(stripped: str, start: int) -> MessageRegex | None:
    """``%...%`` as a whole-message regex, or None when the text is terms that happen to start with %."""
    body = stripped[1:-1]
    if not body or "%" in body.replace("\\%", ""):
        return None
    body = body.replace("\\%", "%")
    return MessageRegex(body, _regex(body, start + 2))


def _regex(pattern: str, column: int) -> str:
    def fail(message: str) -> None:
        raise FilterPatternError(message, column)

    re2, _ = translate_regex(pattern, fail)
    return re2


def _parse_terms(text: str) -> Terms:
    required: list[str] = []
    optional: list[str] = []
    excluded: list[str] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        column = i + 1
        kind = required
        if text[i] in "?-" and i + 1 < n and not text[i + 1].isspace():
            kind = optional if text[i] == "?" else excluded
            i += 1
        elif text[i] in "?-":
            raise FilterPatternError(f"`{text[i]}` must be followed by a term", column)
        if text[i] == '"':
            term, i = _quoted(text, i)
        else:
            end = i
            while end < n and not text[end].isspace() and text[end] != '"':
                end += 1
            term, i = text[i:end], end
        if not term:
            raise FilterPatternError("an empty quoted term matches everything; remove it", column)
        kind.append(term)
    return Terms(tuple(required), tuple(optional), tuple(excluded))


def _quoted(text: str, i: int) -> tuple[str, int]:
    """The string starting at the quote ``text[i]`` (``\\"`` and ``\\\\`` escapes) and the index after it."""
    out, j = [], i + 1
    while j < len(text):
        ch = text[j]
        if ch == "\\" and j + 1 < len(text) and text[j + 1] in '"\\':
            out.append(text[j + 1])
            j += 2
            continue
        if ch == '"':
            return "".join(out), j + 1
        out.append(ch)
        j += 1
    raise FilterPatternError("a quoted string is not closed (missing `\"`)", i + 1)


# ---------------------------------------------------------------------- JSON patterns

_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_KEY = re.compile(r"[^\s.\[\]=!<>()&|{}\"']+")
_WORD = re.compile(r"[A-Za-z]+")
_OPS = ("!=", "<=", ">=", "=", "<", ">")


class _JsonParser:
    """Recursive descent over ``{ expr }``: or := and ('||' and)*; and := atom ('&&' atom)*."""

    def __init__(self, text: str, start: int) -> None:
        self.text = text
        self.i = start

    def fail(self, message: str, at: int | None = None) -> None:
        raise FilterPatternError(message, (self.i if at is None else at) + 1)

    def ws(self) -> None:
        while self.i < len(self.text) and self.text[self.i].isspace():
            self.i += 1

    def peek(self, token: str) -> bool:
        self.ws()
        return self.text.startswith(token, self.i)

    def expect(self, token: str, what: str) -> None:
        if not self.peek(token):
            found = self.text[self.i:self.i + 10] or "the end of the pattern"
            self.fail(f"expected {what}, found {found!r}")
        self.i += len(token)

    def parse(self) -> JsonExpr:
        self.expect("{", "`{`")
        if self.peek("}"):
            self.fail("an empty JSON pattern `{ }`: write a condition such as { $.field = value }")
        expr = self.or_expr()
        self.expect("}", "`&&`, `||` or `}`")
        self.ws()
        if self.i < len(self.text):
            self.fail("unexpected text after the closing `}`")
        return expr

    def or_expr(self) -> JsonExpr:
        items = [self.and_expr()]
        while self.peek("||"):
            self.i += 2
            items.append(self.and_expr())
        return items[0] if len(items) == 1 else Logical("or", tuple(items))

    def and_expr(self) -> JsonExpr:
        items = [self.atom()]
        while self.peek("&&"):
            self.i += 2
            items.append(self.atom())
        return items[0] if len(items) == 1 else Logical("and", tuple(items))

    def atom(self) -> JsonExpr:
        if self.peek("("):
            self.i += 1
            expr = self.or_expr()
            self.expect(")", "`)`")
            return expr
        if not self.peek("$"):
            self.fail("expected a selector such as $.field, or `(`")
        path = self.selector()
        self.ws()
        at = self.i
        word = _WORD.match(self.text, self.i)
        if word:
            return self.keyword_check(path, at)
        for op in _OPS:
            if self.text.startswith(op, self.i):
                self.i += len(op)
                return Compare(path, op, self.value(op))
        self.fail("expected an operator (= != < <= > >=), IS, EXISTS or NOT EXISTS after the selector")

    def keyword_check(self, path: tuple[str | int, ...], at: int) -> Check:
        words = []
        while True:
            self.ws()
            word = _WORD.match(self.text, self.i)
            if not word or len(words) == 2:
                break
            words.append(word.group().upper())
            self.i = word.end()
        phrase = " ".join(words)
        checks = {"IS NULL": "null", "IS TRUE": "true", "IS FALSE": "false", "EXISTS": "exists",
                  "NOT EXISTS": "not_exists"}
        if phrase not in checks:
            self.fail(f"unknown condition {phrase!r}: use IS NULL, IS TRUE, IS FALSE, EXISTS or NOT EXISTS", at)
        return Check(path, checks[phrase])

    def selector(self) -> tuple[str | int, ...]:
        start = self.i
        self.i += 1  # the `$`
        path: list[str | int] = []
        while self.i < len(self.text):
            ch = self.text[self.i]
            if ch == ".":
                key = _KEY.match(self.text, self.i + 1)
                if not key:
                    self.fail("expected a field name after `.`", self.i + 1)
                if key.group() == "*":
                    self.fail("wildcard selectors ($.*) are not supported", self.i + 1)
                path.append(key.group())
                self.i = key.end()
            elif ch == "[":
                close = self.text.find("]", self.i)
                index = self.text[self.i + 1:close] if close > 0 else ""
                if not index.isdigit():
                    self.fail("expected an array index such as [0]", self.i + 1)
                path.append(int(index))
                self.i = close + 1
            else:
                break
        if not path:
            self.fail("a selector names a field: $.field", start)
        return tuple(path)

    def value(self, op: str) -> Value:
        self.ws()
        at = self.i
        text = self.text
        if at >= len(text) or text[at] in ")}":
            self.fail(f"expected a value after `{op}`")
        if text[at] == '"':
            raw, self.i = _quoted(text, at)
            quoted = True
        elif text[at] == "%":
            close = text.find("%", at + 1)
            while close > 0 and text[close - 1] == "\\":
                close = text.find("%", close + 1)
            if close < 0:
                self.fail("a %regex% is not closed (missing `%`)")
            body = text[at + 1:close].replace("\\%", "%")
            self.i = close + 1
            if op not in ("=", "!="):
                self.fail(f"`{op}` compares numbers; a regex needs = or !=", at)
            return MessageRegex(body, _regex(body, at + 2))
        else:
            end = at
            while end < len(text) and not text[end].isspace() and text[end] not in ")}" \
                    and not text.startswith("&&", end) and not text.startswith("||", end):
                end += 1
            raw, self.i = text[at:end], end
            quoted = False
            number = _NUMBER.fullmatch(raw)
            if number:
                value = float(raw)
                if not math.isfinite(value):
                    self.fail(f"the number {raw} is out of range", at)
                return value
        if op not in ("=", "!="):
            self.fail(f"`{op}` compares numbers; {raw!r} is not a number", at)
        if "*" in raw:
            return Wildcard(tuple(raw.split("*")))
        if not quoted and not raw:
            self.fail(f"expected a value after `{op}`", at)
        return raw


# ---------------------------------------------------------------------- Python evaluation


def _lookup(doc: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(doc, dict):
            key = str(step)
            if key not in doc:
                return _MISSING
            doc = doc[key]
        elif isinstance(doc, list) and isinstance(step, int):
            if step >= len(doc):
                return _MISSING
            doc = doc[step]
        else:
            return _MISSING
    return doc


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _eval(node: JsonExpr, doc: Any) -> bool:
    if isinstance(node, Logical):
        results = (_eval(item, doc) for item in node.items)
        return all(results) if node.op == "and" else any(results)
    value = _lookup(doc, node.path)
    if isinstance(node, Check):
        if node.what == "exists":
            return value is not _MISSING
        if node.what == "not_exists":
            return value is _MISSING
        return value is {"null": None, "true": True, "false": False}[node.what]
    want = node.value
    if isinstance(want, float):
        if not _is_number(value):
            return False
        number = float(value)
        return {"=": number == want, "!=": number != want, "<": number < want, "<=": number <= want,
                ">": number > want, ">=": number >= want}[node.op]
    if not isinstance(value, str):
        return False
    if isinstance(want, Wildcard):
        hit = re.fullmatch(want.regex(), value) is not None
    elif isinstance(want, MessageRegex):
        hit = re.search(_python_regex(want.re2), value) is not None
    else:
        hit = value == want
    return hit if node.op == "=" else not hit


def _python_regex(re2: str) -> str:
    # RE2 and Python agree on everything translate_regex lets through except `\z`.
    return re2.replace(r"\z", r"\Z")


# ---------------------------------------------------------------------- SQL


def _pointer(path: tuple[str | int, ...]) -> str:
    return "".join("/" + str(s).replace("~", "~0").replace("/", "~1") for s in path)


def _sql(node: JsonExpr, d: Dialect, m: exp.Expression) -> exp.Expression:
    if isinstance(node, Logical):
        parts = [_sql(item, d, m) for item in node.items]
        return and_(*parts) if node.op == "and" else or_(*parts)
    raw = d.json_get(m, _pointer(node.path), safe=True)     # NULL when missing or not JSON
    text = d.json_stringify(raw, "json")                     # the value as JSON text: '"s"', '5', 'null'
    if isinstance(node, Check):
        if node.what == "exists":
            return not_null(raw)
        if node.what == "not_exists":
            whole = d.json_get(m, "", safe=True)             # the message is JSON at all
            return and_(not_null(whole), is_null(raw))
        return exp.EQ(this=text, expression=lit(node.what))
    want = node.value
    if isinstance(want, float):
        # A string's JSON text keeps its quotes, so it never casts: only JSON numbers compare.
        number = try_cast(text, "DOUBLE")
        ops = {"=": exp.EQ, "!=": exp.NEQ, "<": exp.LT, "<=": exp.LTE, ">": exp.GT, ">=": exp.GTE}
        return ops[node.op](this=number, expression=lit(want))
    is_string = exp.StartsWith(this=text, expression=lit('"'))
    value = d.json_get_text(m, _pointer(node.path), safe=True)
    if isinstance(want, Wildcard):
        hit = d.regex_full_match(value, want.regex())
    elif isinstance(want, MessageRegex):
        hit = d.regex_match(value, want.re2)
    else:
        hit = exp.EQ(this=value, expression=lit(want))
    return and_(is_string, hit if node.op == "=" else exp.Not(this=paren(hit)))
