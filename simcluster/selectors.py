"""Label selectors, field selectors, node affinity terms and taint tolerations, as the API server evaluates them.

Pure functions over plain JSON-like dicts (what the simulated server stores). Parsing follows
k8s.io/apimachinery ``labels.Parse`` / ``fields.ParseSelector``, and matching follows
``component-helpers/scheduling/corev1`` so list/watch filtering and scheduling decisions agree with a real cluster.
Error messages reuse the real wording because clients show them verbatim (the server answers 400 BadRequest).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "label_selector_from_object",
    "node_selector_matches",
    "parse_field_selector",
    "parse_label_selector",
    "tolerates",
    "toleration_tolerates_taint",
]


class SelectorError(ValueError):
    """A selector the API server would reject with 400 BadRequest; ``str(err)`` is its message."""


# --- label requirements -----------------------------------------------------------------------------------------

# Operator spellings of k8s.io/apimachinery/pkg/selection, so error messages read the same.
IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS = "in", "notin", "=", "==", "!="
EXISTS, DOES_NOT_EXIST, GREATER_THAN, LESS_THAN = "exists", "!", "gt", "lt"
_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)

_NAME_RE = re.compile(r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]")
_VALUE_RE = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
_DNS1123_SUBDOMAIN_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
_INT_RE = re.compile(r"[+-]?[0-9]+")

_NAME_MSG = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)


def _key_problem(key: str) -> str | None:
    """Why ``key`` is not a qualified name (optional DNS-subdomain prefix + '/' + name), or None."""
    parts = key.split("/")
    if len(parts) > 2:
        return "a qualified name must consist of alphanumeric characters, '-', '_' or '.', with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            return "prefix part must be non-empty"
        if len(prefix) > 253 or not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
            return "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character"
    name = parts[-1]
    if not name:
        return "name part must be non-empty"
    if len(name) > 63:
        return "name part must be no more than 63 characters"
    return None if _NAME_RE.fullmatch(name) else _NAME_MSG


def _value_problem(value: str) -> str | None:
    if len(value) > 63:
        return "must be no more than 63 characters"
    return None if _VALUE_RE.fullmatch(value) else _VALUE_MSG


def _as_int(text: str) -> int | None:
    return int(text) if _INT_RE.fullmatch(text) else None


@dataclass(frozen=True)
class Requirement:
    """One ``key <operator> values`` clause; operators use the ``selection.Operator`` spellings above."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == EXISTS:
            return present
        if self.operator == DOES_NOT_EXIST:
            return not present
        if self.operator in (IN, EQUALS, DOUBLE_EQUALS):
            return present and labels[self.key] in self.values
        if self.operator in (NOT_IN, NOT_EQUALS):
            return not present or labels[self.key] not in self.values
        # gt / lt: a missing or non-integer label never matches (as in labels.Requirement.Matches).
        have = _as_int(labels[self.key]) if present else None
        want = int(self.values[0])
        if have is None:
            return False
        return have > want if self.operator == GREATER_THAN else have < want


def _requirement(key: str, operator: str, values: Sequence[str], path: str = "<nil>") -> Requirement:
    """Validate like ``labels.NewRequirement`` and build the requirement."""
    problem = _key_problem(key)
    if problem:
        raise SelectorError(f'{path}: Invalid value: "{key}": {problem}')
    if operator in (IN, NOT_IN) and not values:
        raise SelectorError("values: Invalid value: []: for 'in', 'notin' operators, values set can't be empty")
    if operator in (EQUALS, DOUBLE_EQUALS, NOT_EQUALS) and len(values) != 1:
        raise SelectorError(
            f"values: Invalid value: {list(values)}: exact-match compatibility requires one single value"
        )
    if operator in (EXISTS, DOES_NOT_EXIST) and values:
        raise SelectorError(
            f"values: Invalid value: {list(values)}: values set must be empty for exists and does not exist"
        )
    if operator in (GREATER_THAN, LESS_THAN):
        if len(values) != 1:
            raise SelectorError(
                f"values: Invalid value: {list(values)}: for 'Gt', 'Lt' operators, exactly one value is required"
            )
        if _as_int(values[0]) is None:
            raise SelectorError(
                f"values[0]: Invalid value: \"{values[0]}\": for 'Gt', 'Lt' operators, the value must be an integer"
            )
    else:
        for i, value in enumerate(values):
            problem = _value_problem(value)
            if problem:
                raise SelectorError(f'values[{i}][{key}]: Invalid value: "{value}": {problem}')
    return Requirement(key, operator, tuple(values))


@dataclass(frozen=True)
class LabelSelector:
    """ANDed requirements; no requirements matches everything, ``match_nothing`` (a null selector) matches nothing."""

    requirements: tuple[Requirement, ...] = ()
    match_nothing: bool = False

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.match_nothing:
            return False
        have = labels or {}
        return all(r.matches(have) for r in self.requirements)

    def is_empty(self) -> bool:
        """True when the selector matches every object (the server then skips filtering)."""
        return not self.match_nothing and not self.requirements


# --- label selector text ----------------------------------------------------------------------------------------

_SPECIAL = "=!(),<>"
# Token kinds; keywords are only keywords where an operator is expected (like the k8s lexer/parser contexts).
_ID, _END, _OPEN, _CLOSE, _COMMA, _OP = "id", "end", "(", ")", ",", "op"
_SYMBOLS = {"==": DOUBLE_EQUALS, "!=": NOT_EQUALS, "=": EQUALS, "!": DOES_NOT_EXIST, ">": GREATER_THAN, "<": LESS_THAN}


def _tokenize(text: str) -> list[tuple[str, str]]:
    """(kind, literal) pairs; operator tokens carry their literal and are resolved by the parser."""
    tokens: list[tuple[str, str]] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            tokens.append((ch, ch))
            i += 1
        elif ch in _SPECIAL:
            symbol = text[i : i + 2] if text[i : i + 2] in _SYMBOLS else ch
            tokens.append((_OP, symbol))
            i += len(symbol)
        else:
            start = i
            while i < len(text) and not text[i].isspace() and text[i] not in _SPECIAL:
                i += 1
            tokens.append((_ID, text[start:i]))
    tokens.append((_END, ""))
    return tokens


class _LabelParser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.pos = 0

    def peek(self) -> tuple[str, str]:
        return self.tokens[self.pos]

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.pos]
        self.pos = min(self.pos + 1, len(self.tokens) - 1)
        return token

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            kind, literal = self.peek()
            if kind == _END:
                return requirements
            if kind != _ID and (kind, literal) != (_OP, "!"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self.requirement())
            except SelectorError as err:
                raise SelectorError(f"unable to parse requirement: {err}") from None
            kind, literal = self.take()
            if kind == _END:
                return requirements
            if kind != _COMMA:
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self.peek()
            if kind != _ID and (kind, literal) != (_OP, "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def requirement(self) -> Requirement:
        negated = self.peek() == (_OP, "!")
        if negated:
            self.take()
        kind, key = self.take()
        if kind != _ID:
            raise SelectorError(f"found '{key}', expected: identifier")
        problem = _key_problem(key)
        if problem:
            raise SelectorError(f'<nil>: Invalid value: "{key}": {problem}')
        if negated:  # `!key` is complete; anything after it (`!a=b`) is a syntax error for the caller
            return _requirement(key, DOES_NOT_EXIST, ())
        if self.peek()[0] in (_END, _COMMA):
            return _requirement(key, EXISTS, ())
        operator = self.operator()
        values = self.set_values() if operator in (IN, NOT_IN) else [self.exact_value()]
        return _requirement(key, operator, values)

    def operator(self) -> str:
        kind, literal = self.take()
        if kind == _ID and literal in (IN, NOT_IN):
            return literal
        if kind == _OP and literal != "!":
            return _SYMBOLS[literal]
        raise SelectorError(f"found '{literal}', expected: {', '.join(_BINARY_OPERATORS)}")

    def exact_value(self) -> str:
        kind, literal = self.peek()
        if kind in (_END, _COMMA):
            return ""  # `a=` selects an empty value
        self.take()
        if kind != _ID:
            raise SelectorError(f"found '{literal}', expected: identifier")
        return literal

    def set_values(self) -> list[str]:
        kind, literal = self.take()
        if kind != _OPEN:
            raise SelectorError(f"found '{literal}' expected: '('")
        kind, literal = self.peek()
        if kind == _CLOSE:
            self.take()
            return [""]  # `a in ()` is the set {""}, as in k8s
        if kind not in (_ID, _COMMA):
            raise SelectorError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self.identifiers()
        kind, literal = self.take()
        if kind != _CLOSE:
            raise SelectorError(f"found '{literal}', expected: ')'")
        return values

    def identifiers(self) -> list[str]:
        """Comma-separated values; empty slots (`(,a)`, `(a,)`) are the empty string, as in k8s."""
        values: list[str] = []
        expect_value = True
        while True:
            kind, literal = self.peek()
            if kind == _ID and expect_value:
                self.take()
                values.append(literal)
                expect_value = False
            elif kind == _COMMA:
                self.take()
                if expect_value:
                    values.append("")
                expect_value = True
            elif kind == _CLOSE:
                if expect_value:
                    values.append("")
                return list(dict.fromkeys(values))
            else:
                raise SelectorError(f"found '{literal}', expected: ',' or ')'")


def parse_label_selector(text: str) -> LabelSelector:
    """Parse the ``labelSelector`` query parameter (``a=b,c!=d,e in (f,g),!h``); '' matches everything."""
    return LabelSelector(tuple(_LabelParser(text).parse()))


def label_selector_from_object(sel: Mapping[str, Any] | None) -> LabelSelector:
    """Convert a metav1.LabelSelector (``matchLabels`` + ``matchExpressions``); None matches nothing, {} everything."""
    if sel is None:
        return LabelSelector(match_nothing=True)
    operators = {"In": IN, "NotIn": NOT_IN, "Exists": EXISTS, "DoesNotExist": DOES_NOT_EXIST}
    requirements = [_requirement(k, EQUALS, [v], "key") for k, v in (sel.get("matchLabels") or {}).items()]
    for expr in sel.get("matchExpressions") or []:
        operator = operators.get(expr.get("operator", ""))
        if operator is None:
            raise SelectorError(f'"{expr.get("operator", "")}" is not a valid label selector operator')
        requirements.append(_requirement(expr.get("key", ""), operator, list(expr.get("values") or []), "key"))
    return LabelSelector(tuple(requirements))


# --- field selectors --------------------------------------------------------------------------------------------

# Fields the real server exposes as bools print "false" when unset (it formats the Go zero value).
_FIELD_DEFAULTS = {"spec.unschedulable": "false", "spec.hostNetwork": "false"}
# Field labels that are not the object's path (Event's "source" is source.component).
_FIELD_PATHS = {"source": "source.component"}


@dataclass(frozen=True)
class FieldRequirement:
    field: str
    operator: str  # "=" or "!=" ("==" is folded into "=")
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        equal = field_value(obj, self.field) == self.value
        return equal if self.operator == EQUALS else not equal


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def is_empty(self) -> bool:
        return not self.requirements


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string the server compares for a dotted field path; missing fields read as ''."""
    node: Any = obj
    for part in _FIELD_PATHS.get(path, path).split("."):
        node = node.get(part) if isinstance(node, Mapping) else None
    if node is None:
        return _FIELD_DEFAULTS.get(path, "")
    if isinstance(node, bool):
        return "true" if node else "false"
    return str(node)


def _split_terms(text: str) -> list[str]:
    """Split on commas unless backslash-escaped (fields.splitTerms); escapes are kept for _unescape."""
    parts: list[str] = []
    current: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ",":
            parts.append("".join(current))
            current = []
            continue
        current.append(ch)
    parts.append("".join(current))
    return parts


def _unescape(value: str) -> str:
    out, escaped = [], False
    for ch in value:
        if escaped:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {ch}")
        else:
            out.append(ch)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def _split_term(term: str) -> tuple[str, str, str] | None:
    """First operator occurrence wins, checking '!=' and '==' before '=' at each position (fields.splitTerm)."""
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def parse_field_selector(text: str, supported: Collection[str]) -> FieldSelector:
    """Parse the ``fieldSelector`` query parameter against the resource's ``supported`` field labels.

    ``supported`` is the complete list (the real server always adds metadata.name and metadata.namespace; pass them).
    Whitespace is not trimmed, as in k8s: ``a = b`` names the field ``'a '``.
    """
    requirements = []
    for term in sorted(_split_terms(text)):
        if not term:
            continue
        split = _split_term(term)
        if split is None:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        field, op, value = split
        if field not in supported:
            raise SelectorError(f"field label not supported: {field}")
        requirements.append(FieldRequirement(field, NOT_EQUALS if op == "!=" else EQUALS, _unescape(value)))
    return FieldSelector(tuple(requirements))


# --- scheduling: node selector terms and tolerations ------------------------------------------------------------

_NODE_OPERATORS = {
    "In": IN,
    "NotIn": NOT_IN,
    "Exists": EXISTS,
    "DoesNotExist": DOES_NOT_EXIST,
    "Gt": GREATER_THAN,
    "Lt": LESS_THAN,
}


def _node_requirement(expr: Mapping[str, Any], path: str) -> Requirement:
    operator = _NODE_OPERATORS.get(expr.get("operator", ""))
    if operator is None:
        raise SelectorError(f'{path}.operator: Unsupported value: "{expr.get("operator", "")}"')
    return _requirement(expr.get("key", ""), operator, list(expr.get("values") or []), f"{path}.key")


def _field_matches(node: Mapping[str, Any], expr: Mapping[str, Any], path: str) -> bool:
    """matchFields only supports metadata.name with In/NotIn and exactly one value (API validation)."""
    if expr.get("key") != "metadata.name":
        raise SelectorError(f'{path}.key: Invalid value: "{expr.get("key", "")}": not a valid field selector key')
    operator, values = expr.get("operator"), list(expr.get("values") or [])
    if operator not in ("In", "NotIn"):
        raise SelectorError(f'{path}.operator: Unsupported value: "{operator}"')
    if len(values) != 1:
        raise SelectorError(
            f"{path}.values: Invalid value: {values}: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"
        )
    found = (node.get("metadata") or {}).get("name", "") in values
    return found if operator == "In" else not found


def node_selector_matches(node: Mapping[str, Any], term: Mapping[str, Any]) -> bool:
    """Whether ``node`` satisfies one v1 NodeSelectorTerm (its expressions and fields are ANDed).

    A term with neither matchExpressions nor matchFields matches no node (k8s semantics). Malformed terms
    raise SelectorError: the real API server rejects them at pod creation, so they never reach the scheduler.
    Callers OR the terms of a NodeSelector: ``any(node_selector_matches(node, t) for t in terms)``.
    """
    expressions = term.get("matchExpressions") or []
    fields = term.get("matchFields") or []
    if not expressions and not fields:
        return False
    labels = (node.get("metadata") or {}).get("labels") or {}
    for i, expr in enumerate(expressions):
        if not _node_requirement(expr, f"matchExpressions[{i}]").matches(labels):
            return False
    return all(_field_matches(node, expr, f"matchFields[{i}]") for i, expr in enumerate(fields))


def toleration_tolerates_taint(toleration: Mapping[str, Any], taint: Mapping[str, Any]) -> bool:
    """v1.Toleration.ToleratesTaint: empty effect/key are wildcards; operator '' means Equal."""
    effect = toleration.get("effect") or ""
    if effect and effect != taint.get("effect"):
        return False
    key = toleration.get("key") or ""
    if key and key != taint.get("key"):
        return False
    operator = toleration.get("operator") or "Equal"
    if operator == "Exists":
        return True
    return operator == "Equal" and (toleration.get("value") or "") == (taint.get("value") or "")


def tolerates(
    tolerations: Iterable[Mapping[str, Any]] | None,
    taints: Iterable[Mapping[str, Any]] | None,
) -> bool:
    """Whether a pod with ``tolerations`` may be scheduled on a node with ``taints``.

    Only NoSchedule and NoExecute taints block scheduling; PreferNoSchedule is a soft preference and is ignored.
    """
    pod_tolerations = list(tolerations or [])
    return all(
        any(toleration_tolerates_taint(t, taint) for t in pod_tolerations)
        for taint in taints or []
        if taint.get("effect") in ("NoSchedule", "NoExecute")
    )
