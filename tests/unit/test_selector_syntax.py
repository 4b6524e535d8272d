"""Which spellings the parser accepts, and that each means what its canonical form says."""

from __future__ import annotations

import pytest

from pycalico.selector import parse
from pycalico.selector.tokenizer import MAX_LABEL_LENGTH, Kind, tokenize

# (spelling, canonical text it must mean)
EQUIVALENT_SPELLINGS: list[tuple[str, str]] = [
    # Whitespace: none, several, tabs, newlines.
    ('a=="b"', 'a == "b"'),
    ("a=='b'", 'a == "b"'),
    ('a!="b"', 'a != "b"'),
    ('   a   ==   "b"   ', 'a == "b"'),
    ('\ta\t==\t"b"\t', 'a == "b"'),
    ('a ==\n"b"\r\n&&\nhas(c)', '(a == "b" && has(c))'),
    ('a=="b"&&c=="d"', '(a == "b" && c == "d")'),
    ('a=="b"||c=="d"', '(a == "b" || c == "d")'),
    ('(a=="b")', 'a == "b"'),
    ('a in{"x"}', 'a in {"x"}'),
    ('a in {"x","y"}', 'a in {"x", "y"}'),
    ('a in { "x" , "y" }', 'a in {"x", "y"}'),
    ("a in {}", "a in {}"),
    ("a in { }", "a in {}"),
    ('a in {"x",}', 'a in {"x"}'),
    # Multi-word operators: one word, one space, many spaces, tabs.
    ('a not in {"x"}', 'a not in {"x"}'),
    ('a notin {"x"}', 'a not in {"x"}'),
    ('a not   in {"x"}', 'a not in {"x"}'),
    ('a not\tin{"x"}', 'a not in {"x"}'),
    ('a starts with "x"', 'a starts with "x"'),
    ('a startswith "x"', 'a starts with "x"'),
    ('a starts   with"x"', 'a starts with "x"'),
    ('a ends with "x"', 'a ends with "x"'),
    ('a endswith "x"', 'a ends with "x"'),
    ("a ends\twith 'x'", 'a ends with "x"'),
    ('a contains "x"', 'a contains "x"'),
    ('a contains"x"', 'a contains "x"'),
    # Functions with inner and preceding spaces.
    ("has(a)", "has(a)"),
    ("has( a )", "has(a)"),
    ("has(\ta\t)", "has(a)"),
    ("has (a)", "has(a)"),
    ("all()", "all()"),
    ("all( )", "all()"),
    ("all ()", "all()"),
    ("global()", "global()"),
    ("global(  )", "global()"),
    # Negation spacing.
    ("! has(a)", "!has(a)"),
    ("!has(a)&&!has(b)", "(!has(a) && !has(b))"),
    ('!(a=="b")', '!a == "b"'),
    # Empty selector.
    ("", "all()"),
    (" \t\n", "all()"),
]


@pytest.mark.parametrize(("spelling", "canonical"), EQUIVALENT_SPELLINGS)
def test_spelling_is_accepted_and_means_its_canonical_form(spelling: str, canonical: str) -> None:
    sel = parse(spelling)
    assert str(sel) == canonical
    assert sel == parse(canonical)


# Words that are keywords somewhere can still be label keys wherever a label is expected.
KEYWORD_LABELS: list[tuple[str, dict[str, str], str]] = [
    ('in == "x"', {"in": "x"}, 'in == "x"'),
    ('has == "y"', {"has": "y"}, 'has == "y"'),
    ('all == "y"', {"all": "y"}, 'all == "y"'),
    ('global != "y"', {}, 'global != "y"'),
    ('not in {"q"}', {"not": "q"}, 'not in {"q"}'),
    ('not not in {"q"}', {"not": "r"}, 'not not in {"q"}'),
    ('in in {"x"}', {"in": "x"}, 'in in {"x"}'),
    ('contains contains "x"', {"contains": "axb"}, 'contains contains "x"'),
    ('starts starts with "x"', {"starts": "xa"}, 'starts starts with "x"'),
    ('ends endswith "x"', {"ends": "ax"}, 'ends ends with "x"'),
    ('with == "w"', {"with": "w"}, 'with == "w"'),
    ("has(has)", {"has": ""}, "has(has)"),
    ("has(all)", {"all": ""}, "has(all)"),
    ("has(in)", {"in": ""}, "has(in)"),
    ('hasx == "1"', {"hasx": "1"}, 'hasx == "1"'),
    ('all.x == "1"', {"all.x": "1"}, 'all.x == "1"'),
    ('has-label == "1"', {"has-label": "1"}, 'has-label == "1"'),
]


@pytest.mark.parametrize(("text", "labels", "canonical"), KEYWORD_LABELS)
def test_keyword_words_can_be_label_keys(text: str, labels: dict[str, str], canonical: str) -> None:
    sel = parse(text)
    assert sel.evaluate(labels)
    assert str(sel) == canonical
    assert parse(canonical) == sel


def test_has_label_named_like_operator_followed_by_operator() -> None:
    assert parse('has(a) && in in {"x"} || contains == "c"').evaluate({"contains": "c"})


def test_label_of_maximum_length_is_accepted() -> None:
    key = "k" * MAX_LABEL_LENGTH
    assert parse(f'{key} == "v"').evaluate({key: "v"})
    assert parse(f"has({key})").evaluate({key: ""})


def test_bang_equals_at_start_of_term_is_not_negation() -> None:
    # "!=" is always the operator, so "!= x" cannot be read as "!" "= x".
    kinds = [token.kind for token in tokenize('a != "b"')]
    assert kinds == [Kind.LABEL, Kind.NE, Kind.STRING, Kind.EOF]


def test_tokenizer_reports_positions_of_tokens() -> None:
    tokens = list(tokenize(' a == "b" && has( c ) || !all()'))
    assert [(t.kind, t.value, t.position) for t in tokens] == [
        (Kind.LABEL, "a", 1),
        (Kind.EQ, "", 3),
        (Kind.STRING, "b", 6),
        (Kind.AND, "", 10),
        (Kind.HAS, "c", 13),
        (Kind.OR, "", 22),
        (Kind.NOT, "", 25),
        (Kind.ALL, "", 26),
        (Kind.EOF, "", 31),
    ]


def test_tokenizer_reads_operator_words_only_after_a_label() -> None:
    tokens = list(tokenize('in not in {"x"}'))
    assert [t.kind for t in tokens] == [
        Kind.LABEL,
        Kind.NOT_IN,
        Kind.LBRACE,
        Kind.STRING,
        Kind.RBRACE,
        Kind.EOF,
    ]


def test_tokenizer_is_lazy_so_later_garbage_is_not_read_early() -> None:
    tokens = tokenize('a == "b" @@@')
    assert next(tokens).kind is Kind.LABEL
    assert next(tokens).kind is Kind.EQ
    assert next(tokens).kind is Kind.STRING
