"""Recursive-descent parser from selector text to a syntax tree.

    expr  := and ( "||" and )*
    and   := unary ( "&&" unary )*
    unary := "!"* term
    term  := "(" expr ")" | all() | global() | has(label)
           | label ( "==" | "!=" | contains | starts with | ends with ) string
           | label ( in | not in ) "{" [ string ( "," string )* [","] ] "}"

Empty (or blank) text means `all()`.

The tree shape follows Calico's parser, because the canonical text (and so a selector's
identity) is rendered straight from it: a chain `a && b && c` becomes one n-ary node, a
parenthesised group stays a separate node, and parentheses around a single term vanish.
"""

from __future__ import annotations

from collections.abc import Iterator

from pycalico.selector.ast import (
    AllNode,
    AndNode,
    ComparisonNode,
    ContainsNode,
    EndsWithNode,
    EqualsNode,
    GlobalNode,
    HasNode,
    InNode,
    Node,
    NotEqualsNode,
    NotInNode,
    NotNode,
    OrNode,
    SetNode,
    StartsWithNode,
)
from pycalico.selector.errors import SelectorError
from pycalico.selector.tokenizer import Kind, Token, tokenize

# Far beyond any real selector; it keeps parsing, rendering and evaluating (all recursive)
# clear of Python's recursion limit.
MAX_NESTING = 100

_COMPARISONS: dict[Kind, type[ComparisonNode]] = {
    Kind.EQ: EqualsNode,
    Kind.NE: NotEqualsNode,
    Kind.CONTAINS: ContainsNode,
    Kind.STARTS_WITH: StartsWithNode,
    Kind.ENDS_WITH: EndsWithNode,
}
_SET_OPERATORS: dict[Kind, type[SetNode]] = {Kind.IN: InNode, Kind.NOT_IN: NotInNode}
_EXPECTED_TERM = "expected a label comparison, '!', '(', has(), all() or global()"


def parse_tree(text: str) -> Node:
    """Parse selector text into its syntax tree; raise SelectorError if it is invalid."""
    return _Parser(text).parse()


class _Parser:
    __slots__ = ("_depth", "_text", "_token", "_tokens")

    def __init__(self, text: str) -> None:
        self._text = text
        self._tokens: Iterator[Token] = tokenize(text)
        self._token: Token = next(self._tokens)
        self._depth = 0

    def parse(self) -> Node:
        if self._token.kind is Kind.EOF:
            return AllNode()
        node = self._or()
        if self._token.kind is not Kind.EOF:
            raise self._error("unexpected characters")
        return node

    def _or(self) -> Node:
        operands = [self._and()]
        while self._token.kind is Kind.OR:
            self._advance()
            operands.append(self._and())
        return operands[0] if len(operands) == 1 else OrNode(tuple(operands))

    def _and(self) -> Node:
        operands = [self._unary()]
        while self._token.kind is Kind.AND:
            self._advance()
            operands.append(self._unary())
        return operands[0] if len(operands) == 1 else AndNode(tuple(operands))

    def _unary(self) -> Node:
        negated = False
        while self._token.kind is Kind.NOT:
            negated = not negated
            self._advance()
        node = self._term()
        if not negated:
            return node
        # Negations cancel, even across parentheses as in "!(!x)". Calico only cancels
        # adjacent "!"s, which renders "!(!x)" as "!!x", text that then parses back as "x";
        # cancelling here too keeps canonical text a fixed point of parsing.
        return node.operand if isinstance(node, NotNode) else NotNode(node)

    def _term(self) -> Node:
        token = self._token
        kind = token.kind
        if kind is Kind.LABEL:
            return self._comparison()
        if kind is Kind.LPAREN:
            return self._group()
        if kind is Kind.HAS:
            self._advance()
            return HasNode(token.value)
        if kind is Kind.ALL:
            self._advance()
            return AllNode()
        if kind is Kind.GLOBAL:
            self._advance()
            return GlobalNode()
        raise self._error(_EXPECTED_TERM)

    def _group(self) -> Node:
        if self._depth == MAX_NESTING:
            raise self._error(f"parentheses nested more than {MAX_NESTING} deep")
        self._advance()
        self._depth += 1
        node = self._or()
        self._depth -= 1
        self._expect(Kind.RPAREN)
        return node

    def _comparison(self) -> Node:
        label = self._advance().value
        # The tokenizer yields nothing but an operator straight after a label.
        operator = self._advance().kind
        set_node = _SET_OPERATORS.get(operator)
        if set_node is not None:
            return set_node(label, self._set_literal())
        return _COMPARISONS[operator](label, self._expect(Kind.STRING).value)

    def _set_literal(self) -> frozenset[str]:
        self._expect(Kind.LBRACE)
        values: set[str] = set()
        reason = "expected string literal or '}'"
        while self._token.kind is Kind.STRING:
            values.add(self._advance().value)
            if self._token.kind is not Kind.COMMA:
                reason = "expected ',' or '}'"
                break
            # A comma before "}" is tolerated, as Calico does, so its selectors all load.
            self._advance()
        if self._token.kind is not Kind.RBRACE:
            raise self._error(reason)
        self._advance()
        return frozenset(values)

    def _advance(self) -> Token:
        token = self._token
        self._token = next(self._tokens)
        return token

    def _expect(self, kind: Kind) -> Token:
        if self._token.kind is not kind:
            raise self._error(f"expected {kind.value}")
        return self._advance()

    def _error(self, reason: str) -> SelectorError:
        return SelectorError(reason, self._text, self._token.position)
