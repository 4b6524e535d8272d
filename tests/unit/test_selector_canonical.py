"""Canonical text and identity: Calico's exact form, round trips, unique ids, labels used."""

from __future__ import annotations

import base64
import hashlib
import random
from collections.abc import Callable

import pytest

from pycalico.selector import Selector, parse

Labels = dict[str, str]

# (input, canonical text Calico renders for it)
CANONICAL_CASES: list[tuple[str, str]] = [
    ("", "all()"),
    (" all() ", "all()"),
    (" (all() )", "all()"),
    ("global()", "global()"),
    ('a=="b"', 'a == "b"'),
    ("a == 'b'", 'a == "b"'),
    ("a != 'b'", 'a != "b"'),
    ("a == '\"'", "a == '\"'"),
    ('a == "\'"', 'a == "\'"'),
    ("a == 'say \"hi\"'", "a == 'say \"hi\"'"),
    ('a == ""', 'a == ""'),
    ("a contains '\"'", "a contains '\"'"),
    ('a contains "\'"', 'a contains "\'"'),
    ("a startswith '\"'", "a starts with '\"'"),
    ('a endswith "\'"', 'a ends with "\'"'),
    ("a!='\"'", "a != '\"'"),
    ("has( a )", "has(a)"),
    ("!has(a)", "!has(a)"),
    ("! has(a)", "!has(a)"),
    # Adjacent negations cancel in pairs, as in Calico.
    ("!!has(a)", "has(a)"),
    ("!!!has(a)", "!has(a)"),
    ("!! ! has(a)", "!has(a)"),
    # ...and so do negations separated by parentheses (see parser._unary for why).
    ("!(!has(a))", "has(a)"),
    ("!(!(!has(a)))", "!has(a)"),
    ('!(a == "b")', '!a == "b"'),
    ('!(a == "b" && c == "d")', '!(a == "b" && c == "d")'),
    ('!(a == "b" || c == "d")', '!(a == "b" || c == "d")'),
    # Binary operators are always parenthesised, chains are n-ary, groups stay nested.
    ('a == "b" && c == "d"', '(a == "b" && c == "d")'),
    ('a == "b" && c == "d" && e == "f"', '(a == "b" && c == "d" && e == "f")'),
    ('(a == "b" && c == "d") && e == "f"', '((a == "b" && c == "d") && e == "f")'),
    ('a == "b" && (c == "d" && e == "f")', '(a == "b" && (c == "d" && e == "f"))'),
    ('a == "b" || c == "d" || e == "f"', '(a == "b" || c == "d" || e == "f")'),
    ('a == "b" || c == "d" && e == "f"', '(a == "b" || (c == "d" && e == "f"))'),
    ('a == "b" && c == "d" || e == "f"', '((a == "b" && c == "d") || e == "f")'),
    ('(a == "b" || c == "d") && e == "f"', '((a == "b" || c == "d") && e == "f")'),
    ("!has(a) && has(b)", "(!has(a) && has(b))"),
    ('(a == "b")', 'a == "b"'),
    ("((has(a)))", "has(a)"),
    ("all() && global()", "(all() && global())"),
    # Set items are sorted (by code point, which is Go's byte order) and de-duplicated.
    ('a in {"d"}', 'a in {"d"}'),
    ('a in {"a", "b"}', 'a in {"a", "b"}'),
    ('a in {"d", "a", "b"}', 'a in {"a", "b", "d"}'),
    ('a in {"z", "z", "x", "y", "x", "a"}', 'a in {"a", "x", "y", "z"}'),
    ("a in {'b', \"B\", '_', '1'}", 'a in {"1", "B", "_", "b"}'),
    ('a in {"é", "z", "Z"}', 'a in {"Z", "z", "é"}'),
    ('a in {"\'", \'"\', "c"}', 'a in {\'"\', "\'", "c"}'),
    ("a in {}", "a in {}"),
    ('a in {"x",}', 'a in {"x"}'),
    ("a not in {'y', 'x'}", 'a not in {"x", "y"}'),
    ('a notin{"x"}', 'a not in {"x"}'),
    ("a not in {}", "a not in {}"),
    # Calico's own canonicalisation examples.
    ("! (has( b)||! has(a ))", "!(has(b) || !has(a))"),
    ('! (a == "b"&&! c != "d")', '!(a == "b" && !c != "d")'),
    (
        "!(!(k == 'v' && has(t) || all()) && (a in {'b', 'c'}))",
        '!(!((k == "v" && has(t)) || all()) && a in {"b", "c"})',
    ),
    (
        "projectcalico.org/name == 'x' && k8s-app in {'dns'} || !has(a_b.c/d-e)",
        '((projectcalico.org/name == "x" && k8s-app in {"dns"}) || !has(a_b.c/d-e))',
    ),
]


@pytest.mark.parametrize(("text", "canonical"), CANONICAL_CASES)
def test_canonical_text_matches_calico(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical


@pytest.mark.parametrize(("text", "canonical"), CANONICAL_CASES)
def test_canonical_text_round_trips_to_an_equal_selector(text: str, canonical: str) -> None:
    again = parse(canonical)
    assert again == parse(text)
    assert str(again) == canonical


def calico_unique_id(canonical: str) -> str:
    digest = hashlib.sha224(f"s:{canonical}".encode()).digest()
    return "s:" + base64.urlsafe_b64encode(digest).decode().rstrip("=")


# Values from Calico's own tests, so these ids are known to agree with Felix's.
@pytest.mark.parametrize(
    ("text", "unique_id"),
    [
        ("", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"),
        (" all() ", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"),
        (" (all() )", "s:5y5I3VdRZfDU01O--xXAPx2yxCQQqMf0M6IWug"),
        ("! (has( b)||! has(a ))", "s:Iss0uCleLYv1GSv_pNm7hAO58kE9jAx1NKyG3Q"),
        ('! (a == "b"&&! c != "d")', "s:lh3haoY1ikTRkd4UZu0nWSaIBknYLPJLX16d-w"),
    ],
)
def test_unique_id_matches_calico(text: str, unique_id: str) -> None:
    assert parse(text).unique_id() == unique_id


@pytest.mark.parametrize(("text", "canonical"), CANONICAL_CASES)
def test_unique_id_is_unpadded_base64url_sha224_of_prefixed_canonical_text(
    text: str, canonical: str
) -> None:
    unique_id = parse(text).unique_id()
    assert unique_id == calico_unique_id(canonical)
    assert unique_id.startswith("s:")
    # 28 digest bytes are 38 base64 characters once the padding is dropped.
    assert len(unique_id) == 2 + 38
    assert "=" not in unique_id


def test_unique_id_is_deterministic() -> None:
    text = 'a == "b" && has(c)'
    assert parse(text).unique_id() == parse(text).unique_id()
    assert Selector(parse(text).root).unique_id() == parse(text).unique_id()


def test_unique_id_is_equal_for_equivalent_spellings() -> None:
    spellings = ['a=="b"', "a == 'b'", ' ( a  ==  "b" ) ', '!!a == "b"', '!(!(a=="b"))']
    assert len({parse(text).unique_id() for text in spellings}) == 1


def test_unique_id_differs_for_different_selectors() -> None:
    texts = [
        'a == "b"',
        'a != "b"',
        'a == "c"',
        'b == "b"',
        'a in {"b"}',
        'a not in {"b"}',
        'a contains "b"',
        'a starts with "b"',
        'a ends with "b"',
        "has(a)",
        "!has(a)",
        "all()",
        "global()",
        'a == "b" && c == "d"',
        'a == "b" || c == "d"',
        '(a == "b" && c == "d") && e == "f"',
        'a == "b" && c == "d" && e == "f"',
    ]
    assert len({parse(text).unique_id() for text in texts}) == len(texts)


def test_selectors_with_equal_canonical_text_are_equal_and_hash_alike() -> None:
    first = parse('a in {"y", "x", "x"}')
    second = parse("a in {'x','y'}")
    assert first is not second
    assert first == second
    assert hash(first) == hash(second)
    assert len({first, second}) == 1


def test_selectors_with_different_canonical_text_are_unequal() -> None:
    assert parse("has(a)") != parse("!has(a)")
    assert parse('a == "b"') != parse('a != "b"')
    # Grouping is part of the identity, as in Calico, even where it cannot change a result.
    assert parse("has(a) && has(b) && has(c)") != parse("(has(a) && has(b)) && has(c)")


def test_selector_is_not_equal_to_its_text() -> None:
    assert parse("has(a)") != "has(a)"


def test_repr_shows_canonical_text() -> None:
    assert repr(parse("a=='b'")) == "parse('a == \"b\"')"


@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("", set()),
        ("all()", set()),
        ("global()", set()),
        ('a == "b"', {"a"}),
        ('a != "b"', {"a"}),
        ("has(a)", {"a"}),
        ("!has(a)", {"a"}),
        ('a in {"x"}', {"a"}),
        ("a not in {}", {"a"}),
        ('a contains "x"', {"a"}),
        ('a starts with "x"', {"a"}),
        ('a ends with "x"', {"a"}),
        ('a == "b" && c == "d" || !has(e)', {"a", "c", "e"}),
        ('has(a) && a == "b" && (a != "c" || has(x.y/z))', {"a", "x.y/z"}),
        ('in in {"has"} && has(all)', {"in", "all"}),
    ],
)
def test_labels_used_lists_every_key_the_selector_reads(text: str, keys: set[str]) -> None:
    used = parse(text).labels_used()
    assert isinstance(used, frozenset)
    assert used == keys


# --- Random selectors: spelling variety in, canonical text out, checked by an oracle. ---

KEYS = ["a", "b", "k8s-app", "projectcalico.org/name", "in", "has", "all", "not", "starts"]
VALUES = ["", "x", "y", "xy", "yx", "it's", 'say "hi"', "a b", "{,}", "&&"]

Oracle = Callable[[Labels], bool]


class RandomSelectors:
    """Writes random valid selectors in varied spellings, each with an independent oracle."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.keys: set[str] = set()

    def expression(self, depth: int) -> tuple[str, Oracle, bool]:
        """Return (text, oracle, whether the text is a bare && or || chain)."""
        roll = self.rng.random()
        if depth == 0 or roll < 0.35:
            return *self.term(), False
        if roll < 0.5:
            return *self.negation(depth), False
        return self.chain(depth)

    def chain(self, depth: int) -> tuple[str, Oracle, bool]:
        operator = self.rng.choice(["&&", "||"])
        texts: list[str] = []
        oracles: list[Oracle] = []
        for _ in range(self.rng.randint(2, 4)):
            text, oracle, is_chain = self.expression(depth - 1)
            if is_chain or self.rng.random() < 0.15:
                text = f"({self.space()}{text}{self.space()})"
            texts.append(text)
            oracles.append(oracle)
        joined = f"{self.space()}{operator}{self.space()}".join(texts)
        if operator == "&&":
            return joined, lambda labels: all(o(labels) for o in oracles), True
        return joined, lambda labels: any(o(labels) for o in oracles), True

    def negation(self, depth: int) -> tuple[str, Oracle]:
        bangs = self.rng.choice([1, 1, 1, 2, 3])
        text, oracle, is_chain = self.expression(depth - 1)
        if is_chain or self.rng.random() < 0.3:
            text = f"({self.space()}{text}{self.space()})"
        prefix = "".join("!" + self.space() for _ in range(bangs))
        if bangs % 2 == 0:
            return prefix + text, oracle
        return prefix + text, lambda labels: not oracle(labels)

    def term(self) -> tuple[str, Oracle]:
        kind = self.rng.choice(
            ["==", "!=", "in", "not in", "has", "contains", "starts", "ends", "all", "global"]
        )
        if kind == "all":
            return f"all({self.space()})", lambda labels: True
        if kind == "global":
            return f"global({self.space()})", lambda labels: True
        key = self.rng.choice(KEYS)
        self.keys.add(key)
        if kind == "has":
            text = f"has{self.space()}({self.space()}{key}{self.space()})"
            return text, lambda labels: key in labels
        if kind in ("in", "not in"):
            return self.membership(key, kind == "in")
        value = self.rng.choice(VALUES)
        spelled = {
            "==": "==",
            "!=": "!=",
            "contains": " contains",
            "starts": self.rng.choice([" starts with", " startswith", "\tstarts  with"]),
            "ends": self.rng.choice([" ends with", " endswith", " ends\twith"]),
        }[kind]
        text = f"{key}{self.space()}{spelled}{self.space()}{self.quoted(value)}"
        # Written without the str methods the implementation uses, to be a fair oracle.
        tests: dict[str, Callable[[str], bool]] = {
            "==": lambda actual: actual == value,
            "!=": lambda actual: actual != value,
            "contains": lambda actual: any(
                actual[i : i + len(value)] == value for i in range(len(actual) + 1)
            ),
            "starts": lambda actual: actual[: len(value)] == value,
            "ends": lambda actual: actual[len(actual) - len(value) :] == value,
        }
        test = tests[kind]
        # Only "!=" is satisfied by an absent label.
        absent = kind == "!="
        return text, lambda labels: test(labels[key]) if key in labels else absent

    def membership(self, key: str, positive: bool) -> tuple[str, Oracle]:
        values = [self.rng.choice(VALUES) for _ in range(self.rng.randint(0, 4))]
        items = f"{self.space()},{self.space()}".join(self.quoted(v) for v in values)
        if values and self.rng.random() < 0.1:
            items += ","
        operator = " in" if positive else self.rng.choice([" not in", " notin", " not \t in"])
        text = f"{key}{operator}{self.space()}{{{self.space()}{items}{self.space()}}}"
        if positive:
            return text, lambda labels: key in labels and any(labels[key] == v for v in values)
        return text, lambda labels: key not in labels or all(labels[key] != v for v in values)

    def quoted(self, value: str) -> str:
        if '"' in value:
            mark = "'"
        elif "'" in value:
            mark = '"'
        else:
            mark = self.rng.choice("\"'")
        return mark + value + mark

    def space(self) -> str:
        return self.rng.choice(["", "", " ", "  ", "\t", "\n"])

    def labels(self) -> Labels:
        return {
            key: self.rng.choice([*VALUES, "x y", "hi"]) for key in KEYS if self.rng.random() < 0.5
        }


@pytest.mark.parametrize("seed", range(300))
def test_random_selector_evaluates_like_oracle_and_round_trips(seed: int) -> None:
    gen = RandomSelectors(random.Random(seed))
    text, oracle, _ = gen.expression(depth=4)
    sel = parse(text)
    canonical = str(sel)
    again = parse(canonical)

    assert again == sel, text
    assert str(again) == canonical
    assert again.unique_id() == sel.unique_id()
    assert sel.labels_used() == gen.keys
    for _ in range(25):
        labels = gen.labels()
        expected = oracle(labels)
        assert sel.evaluate(labels) is expected, (text, labels)
        assert again.evaluate(labels) is expected, (canonical, labels)
        # Labels the selector does not read never change its result.
        assert sel.evaluate({**labels, "unrelated/key": "x"}) is expected
