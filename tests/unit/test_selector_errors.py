"""Invalid selectors: each raises SelectorError saying where, and what was expected there."""

from __future__ import annotations

import pytest

from pycalico.selector import SelectorError, parse
from pycalico.selector.parser import MAX_NESTING

LONG_LABEL = "k" * 513
EXPECTED_TERM = "expected a label comparison"
EXPECTED_OPERATOR = "expected an operator"

# (selector, position of the problem, part of the message naming what was expected)
ERROR_CASES: list[tuple[str, int, str]] = [
    # Unbalanced parentheses.
    ('(a == "b"', 9, "expected ')'"),
    ('((a == "b")', 11, "expected ')'"),
    ('a == "b")', 8, "unexpected characters"),
    (")", 0, EXPECTED_TERM),
    ("()", 1, EXPECTED_TERM),
    ("(", 1, EXPECTED_TERM),
    # Missing operands and dangling boolean operators.
    ('a == "b" &&', 11, EXPECTED_TERM),
    ('a == "b" ||  ', 13, EXPECTED_TERM),
    ('&& a == "b"', 0, EXPECTED_TERM),
    ('|| a == "b"', 0, EXPECTED_TERM),
    ('a == "b" && && c == "d"', 12, EXPECTED_TERM),
    ('a == "b" && (c == "d" || )', 25, EXPECTED_TERM),
    ("!", 1, EXPECTED_TERM),
    ("has(a) && !", 11, EXPECTED_TERM),
    # Unknown or malformed operators.
    ('a = "b"', 2, EXPECTED_OPERATOR),
    ('a === "b"', 4, "unexpected characters"),
    ('a <> "b"', 2, EXPECTED_OPERATOR),
    ('a ! "b"', 2, EXPECTED_OPERATOR),
    ('a not "b"', 2, EXPECTED_OPERATOR),
    ('a starts "b"', 2, EXPECTED_OPERATOR),
    ('a ends by "b"', 2, EXPECTED_OPERATOR),
    ('a containsx "b"', 2, EXPECTED_OPERATOR),
    ('a in.x {"b"}', 2, EXPECTED_OPERATOR),
    ('a == "b" & c == "d"', 9, "expected '&&'"),
    ('a == "b" | c == "d"', 9, "expected '||'"),
    # Operator without label, label without operator.
    ('== "a"', 0, EXPECTED_TERM),
    ('!= "a"', 0, EXPECTED_TERM),
    ('in {"a"}', 3, EXPECTED_OPERATOR),
    ("a", 1, EXPECTED_OPERATOR),
    ("a ", 2, EXPECTED_OPERATOR),
    ("a b", 2, EXPECTED_OPERATOR),
    ('a && b == "c"', 2, EXPECTED_OPERATOR),
    ("'b1' == b", 0, EXPECTED_TERM),
    # Missing or unquoted values.
    ("a ==", 4, "expected string literal"),
    ("a == b", 5, "expected string literal"),
    ('a == "b" && c != d', 17, "expected string literal"),
    ("a contains b", 11, "expected string literal"),
    ("a starts with {'b'}", 14, "expected string literal"),
    ('a == ("b")', 5, "expected string literal"),
    # Unterminated strings.
    ('a == "b', 5, "unterminated string literal"),
    ("a == 'b", 5, "unterminated string literal"),
    ("a == \"b'", 5, "unterminated string literal"),
    ('a in {"x", "y}', 11, "unterminated string literal"),
    # Set literals.
    ('a in "x"', 5, "expected '{'"),
    ("a in", 4, "expected '{'"),
    ('a in {"x"', 9, "expected ',' or '}'"),
    ('a in {"x" "y"}', 10, "expected ',' or '}'"),
    ('a in {"x"; "y"}', 9, "unexpected characters"),
    ("a in {,}", 6, "expected string literal or '}'"),
    ('a in {"x",,}', 10, "expected string literal or '}'"),
    ("a in {x}", 6, "expected string literal or '}'"),
    ('a not in {"x"', 13, "expected ',' or '}'"),
    # Label length.
    (f'{LONG_LABEL} == "v"', 0, "label too long (513 characters, maximum 512)"),
    (f"has({LONG_LABEL})", 4, "label too long"),
    (f'a == "b" || {LONG_LABEL} == "v"', 12, "label too long"),
    # Characters that belong nowhere.
    ('@ == "a"', 0, "unexpected characters"),
    ('a == "b" && $x == "y"', 12, "unexpected characters"),
    ('a@b == "c"', 1, EXPECTED_OPERATOR),
    ('a == "b" && é == "c"', 12, "unexpected characters"),
    ('a == "b" # comment', 9, "unexpected characters"),
    # Functions.
    ("has()", 4, "expected label"),
    ("has( )", 5, "expected label"),
    ('has("a")', 4, "expected label"),
    ("has(a", 5, "expected ')'"),
    ("has(a b)", 6, "expected ')'"),
    ("all(x)", 4, "expected ')'"),
    ("all(", 4, "expected ')'"),
    ("global(a)", 7, "expected ')'"),
    # Trailing garbage after a complete expression.
    ('has(a) == "b"', 7, "unexpected characters"),
    ('a == "b" c == "d"', 9, "unexpected characters"),
    ('a == "b" "c"', 9, "unexpected characters"),
    ("all() all()", 6, "unexpected characters"),
    ("has(a) !has(b)", 7, "unexpected characters"),
    ('a in {"x"} }', 11, "unexpected characters"),
    # Nesting beyond the limit.
    ("(" * (MAX_NESTING + 1) + "has(a)" + ")" * (MAX_NESTING + 1), MAX_NESTING, "nested"),
]


# Short ids: some cases are hundreds of characters long.
CASE_IDS = [text if len(text) <= 30 else text[:27] + "..." for text, _, _ in ERROR_CASES]


@pytest.mark.parametrize(("text", "position", "expected"), ERROR_CASES, ids=CASE_IDS)
def test_invalid_selector_raises_selector_error_at_position(
    text: str, position: int, expected: str
) -> None:
    with pytest.raises(SelectorError) as caught:
        parse(text)
    error = caught.value
    assert isinstance(error, ValueError)
    message = str(error)
    assert f"position {position}" in message
    assert expected in message
    assert error.position == position
    assert error.selector == text


@pytest.mark.parametrize(("text", "position", "expected"), ERROR_CASES, ids=CASE_IDS)
def test_error_message_is_one_line(text: str, position: int, expected: str) -> None:
    with pytest.raises(SelectorError) as caught:
        parse(text)
    assert "\n" not in str(caught.value)
    assert "\r" not in str(caught.value)


def test_error_message_quotes_the_text_at_the_position() -> None:
    with pytest.raises(SelectorError) as caught:
        parse('has(a) == "b"')
    assert str(caught.value) == "unexpected characters at position 7: '== \"b\"'"


def test_error_at_end_of_text_has_no_excerpt() -> None:
    with pytest.raises(SelectorError) as caught:
        parse('a == "b" && c ==')
    assert str(caught.value) == "expected string literal at position 16"


def test_error_excerpt_is_truncated() -> None:
    with pytest.raises(SelectorError) as caught:
        parse("a == b" + " && x" * 50)
    message = str(caught.value)
    assert message.startswith("expected string literal at position 5: 'b && x && x")
    assert message.endswith("...'")
    assert len(message) < 100


def test_newline_in_selector_is_escaped_in_the_message() -> None:
    with pytest.raises(SelectorError) as caught:
        parse('a ==\n"b')
    assert str(caught.value) == "unterminated string literal at position 5: '\"b'"
    with pytest.raises(SelectorError) as caught:
        parse("a == b\n&& c")
    assert "'b\\n&& c'" in str(caught.value)


def test_first_error_in_reading_order_is_reported() -> None:
    # The missing quotes come before the stray "@"; the lazy tokenizer never reaches it.
    with pytest.raises(SelectorError) as caught:
        parse("a == b && @")
    assert caught.value.position == 5


def test_reason_attribute_names_what_was_expected() -> None:
    with pytest.raises(SelectorError) as caught:
        parse("a in {")
    assert caught.value.reason == "expected string literal or '}'"


def test_failed_parse_is_not_cached_as_success() -> None:
    for _ in range(2):
        with pytest.raises(SelectorError):
            parse('a == "b" &&')
