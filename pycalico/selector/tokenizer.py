"""Turns selector text into tokens, one at a time, as the parser asks for them.

Tokens are produced lazily so that the error reported is always the first one in reading
order, whether it is lexical (a stray `@`) or grammatical (a missing operand).

Words are read in context rather than from a fixed keyword list, so that every word that
is a keyword somewhere can still be a label key elsewhere:

* right after a label, only an operator may follow, so `in`, `not in`, `contains`,
  `starts with` and `ends with` are recognised there and nowhere else;
* `has`, `all` and `global` are functions only when the next non-blank character is `(`
  (which could never follow a label key), so `has == "x"` compares the label `has`.
"""

from __future__ import annotations

import enum
from collections.abc import Iterator
from typing import NamedTuple

from pycalico.selector.errors import SelectorError

# Calico's limit; it caps the cost of a single label lookup too.
MAX_LABEL_LENGTH = 512


class Kind(enum.Enum):
    """What a token is; the value is how error messages name it."""

    LABEL = "label"
    STRING = "string literal"
    LPAREN = "'('"
    RPAREN = "')'"
    LBRACE = "'{'"
    RBRACE = "'}'"
    COMMA = "','"
    AND = "'&&'"
    OR = "'||'"
    NOT = "'!'"
    EQ = "'=='"
    NE = "'!='"
    IN = "'in'"
    NOT_IN = "'not in'"
    CONTAINS = "'contains'"
    STARTS_WITH = "'starts with'"
    ENDS_WITH = "'ends with'"
    HAS = "has()"
    ALL = "all()"
    GLOBAL = "global()"
    EOF = "end of selector"


class Token(NamedTuple):
    kind: Kind
    # The label key for LABEL and HAS, the unquoted contents for STRING, else "".
    value: str
    # 0-based character offset of the token's first character.
    position: int


_WHITESPACE = frozenset(" \t\r\n")
_LABEL_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_./-")
_QUOTES = frozenset("\"'")
_TWO_CHAR_SYMBOLS = {"&&": Kind.AND, "||": Kind.OR, "==": Kind.EQ, "!=": Kind.NE}
_ONE_CHAR_SYMBOLS = {
    "(": Kind.LPAREN,
    ")": Kind.RPAREN,
    "{": Kind.LBRACE,
    "}": Kind.RBRACE,
    ",": Kind.COMMA,
    "!": Kind.NOT,
}
_FUNCTIONS = {"has": Kind.HAS, "all": Kind.ALL, "global": Kind.GLOBAL}
# Multi-word operators may also be written as one word ("notin", "startswith").
_OPERATOR_WORDS = {
    "in": Kind.IN,
    "notin": Kind.NOT_IN,
    "contains": Kind.CONTAINS,
    "startswith": Kind.STARTS_WITH,
    "endswith": Kind.ENDS_WITH,
}
_OPERATOR_FIRST_WORDS = {
    "not": ("in", Kind.NOT_IN),
    "starts": ("with", Kind.STARTS_WITH),
    "ends": ("with", Kind.ENDS_WITH),
}
_EXPECTED_OPERATOR = "expected an operator (==, !=, in, not in, contains, starts with, ends with)"


def tokenize(text: str) -> Iterator[Token]:
    """Yield the tokens of `text`, ending with an EOF token; raise SelectorError when stuck."""
    scanner = _Scanner(text)
    after_label = False
    while True:
        token = scanner.operator() if after_label else scanner.token()
        yield token
        if token.kind is Kind.EOF:
            return
        after_label = token.kind is Kind.LABEL


class _Scanner:
    __slots__ = ("_end", "_pos", "_text")

    def __init__(self, text: str) -> None:
        self._text = text
        self._pos = 0
        self._end = len(text)

    def token(self) -> Token:
        """Read the next token anywhere except straight after a label."""
        text = self._text
        start = self._skip_whitespace(self._pos)
        if start == self._end:
            self._pos = start
            return Token(Kind.EOF, "", start)
        kind = _TWO_CHAR_SYMBOLS.get(text[start : start + 2])
        if kind is not None:
            self._pos = start + 2
            return Token(kind, "", start)
        char = text[start]
        kind = _ONE_CHAR_SYMBOLS.get(char)
        if kind is not None:
            self._pos = start + 1
            return Token(kind, "", start)
        if char in _QUOTES:
            return self._string(start, char)
        if char in _LABEL_CHARS:
            return self._word(start)
        if char in "&|":
            raise self._error(f"expected '{char * 2}'", start)
        raise self._error("unexpected characters", start)

    def operator(self) -> Token:
        """Read the comparison operator that must follow a label."""
        text = self._text
        start = self._skip_whitespace(self._pos)
        kind = _TWO_CHAR_SYMBOLS.get(text[start : start + 2])
        if kind is Kind.EQ or kind is Kind.NE:
            self._pos = start + 2
            return Token(kind, "", start)
        end = self._word_end(start)
        word = text[start:end]
        kind = _OPERATOR_WORDS.get(word)
        if kind is None and word in _OPERATOR_FIRST_WORDS:
            second_word, two_word_kind = _OPERATOR_FIRST_WORDS[word]
            second_start = self._skip_whitespace(end)
            second_end = self._word_end(second_start)
            if text[second_start:second_end] == second_word:
                kind, end = two_word_kind, second_end
        if kind is None:
            raise self._error(_EXPECTED_OPERATOR, start)
        self._pos = end
        return Token(kind, "", start)

    def _string(self, start: int, quote: str) -> Token:
        # No escapes exist: a literal runs to the next quote of the kind that opened it.
        close = self._text.find(quote, start + 1)
        if close == -1:
            raise self._error("unterminated string literal", start)
        self._pos = close + 1
        return Token(Kind.STRING, self._text[start + 1 : close], start)

    def _word(self, start: int) -> Token:
        end = self._word_end(start)
        kind = _FUNCTIONS.get(self._text[start:end])
        if kind is not None:
            paren = self._skip_whitespace(end)
            if paren < self._end and self._text[paren] == "(":
                return self._function(kind, start, paren + 1)
        self._pos = end
        return Token(Kind.LABEL, self._label(start, end), start)

    def _function(self, kind: Kind, start: int, pos: int) -> Token:
        pos = self._skip_whitespace(pos)
        label = ""
        if kind is Kind.HAS:
            label_end = self._word_end(pos)
            if label_end == pos:
                raise self._error("expected label", pos)
            label = self._label(pos, label_end)
            pos = self._skip_whitespace(label_end)
        if pos == self._end or self._text[pos] != ")":
            raise self._error("expected ')'", pos)
        self._pos = pos + 1
        return Token(kind, label, start)

    def _label(self, start: int, end: int) -> str:
        if end - start > MAX_LABEL_LENGTH:
            raise self._error(
                f"label too long ({end - start} characters, maximum {MAX_LABEL_LENGTH})", start
            )
        return self._text[start:end]

    def _skip_whitespace(self, pos: int) -> int:
        text, end = self._text, self._end
        while pos < end and text[pos] in _WHITESPACE:
            pos += 1
        return pos

    def _word_end(self, pos: int) -> int:
        text, end = self._text, self._end
        while pos < end and text[pos] in _LABEL_CHARS:
            pos += 1
        return pos

    def _error(self, reason: str, position: int) -> SelectorError:
        return SelectorError(reason, self._text, position)
