"""What selectors match: every operator, absent labels, precedence and the public API."""

from __future__ import annotations

from types import MappingProxyType

import pytest

from pycalico import selector
from pycalico.selector import ALL, Selector, SelectorError, parse

Labels = dict[str, str]


def matches(text: str, labels: Labels) -> bool:
    return parse(text).evaluate(labels)


# (selector, labels, expected) for each operator: match, mismatch and absent label.
OPERATOR_CASES: list[tuple[str, Labels, bool]] = [
    ('a == "b"', {"a": "b"}, True),
    ('a == "b"', {"a": "c"}, False),
    ('a == "b"', {}, False),
    ('a == "b"', {"c": "b"}, False),
    ('a == ""', {"a": ""}, True),
    ('a == ""', {}, False),
    ('a == "b"', {"a": "bb"}, False),
    ('a == "B"', {"a": "b"}, False),
    ('a != "b"', {"a": "c"}, True),
    ('a != "b"', {"a": "b"}, False),
    ('a != "b"', {}, True),
    ('a != ""', {"a": ""}, False),
    ('a in {"x", "y"}', {"a": "x"}, True),
    ('a in {"x", "y"}', {"a": "y"}, True),
    ('a in {"x", "y"}', {"a": "z"}, False),
    ('a in {"x", "y"}', {}, False),
    ('a in {"x"}', {"a": "xy"}, False),
    ('a in {""}', {"a": ""}, True),
    ("a in {}", {"a": "x"}, False),
    ("a in {}", {}, False),
    ('a not in {"x", "y"}', {"a": "z"}, True),
    ('a not in {"x", "y"}', {"a": "x"}, False),
    ('a not in {"x", "y"}', {}, True),
    ("a not in {}", {"a": "x"}, True),
    ("a not in {}", {}, True),
    ("has(a)", {"a": "x"}, True),
    ("has(a)", {"a": ""}, True),
    ("has(a)", {"b": "a"}, False),
    ("has(a)", {}, False),
    ("!has(a)", {}, True),
    ("!has(a)", {"a": ""}, False),
    ('a contains "ell"', {"a": "hello"}, True),
    ('a contains "hello"', {"a": "hello"}, True),
    ('a contains ""', {"a": ""}, True),
    ('a contains "xyz"', {"a": "hello"}, False),
    ('a contains "x"', {}, False),
    ('a contains ""', {}, False),
    ('a starts with "he"', {"a": "hello"}, True),
    ('a starts with "hello"', {"a": "hello"}, True),
    ('a starts with "lo"', {"a": "hello"}, False),
    ('a starts with "he"', {}, False),
    ('a starts with ""', {}, False),
    ('a ends with "lo"', {"a": "hello"}, True),
    ('a ends with "he"', {"a": "hello"}, False),
    ('a ends with "lo"', {}, False),
    ('a ends with ""', {"a": "x"}, True),
    ("all()", {}, True),
    ("all()", {"a": "b"}, True),
    ("global()", {}, True),
    ("global()", {"a": "b"}, True),
    ("", {}, True),
    ("  \t ", {"a": "b"}, True),
    ("!all()", {}, False),
    ('!a == "b"', {"a": "b"}, False),
    ('!a == "b"', {"a": "c"}, True),
    ('!a == "b"', {}, True),
    ('!a in {"x"}', {"a": "y"}, True),
    ('!a not in {"x"}', {}, False),
]


@pytest.mark.parametrize(("text", "labels", "expected"), OPERATOR_CASES)
def test_operator_truth_table(text: str, labels: Labels, expected: bool) -> None:
    assert matches(text, labels) is expected


def test_equal_is_false_when_label_absent() -> None:
    assert not matches('a == "b"', {})


def test_not_equal_is_true_when_label_absent() -> None:
    assert matches('a != "b"', {})


def test_in_is_false_when_label_absent() -> None:
    assert not matches('a in {"b"}', {})


def test_not_in_is_true_when_label_absent() -> None:
    assert matches('a not in {"b"}', {})


def test_empty_set_never_matches_with_in_and_always_with_not_in() -> None:
    for labels in ({}, {"a": ""}, {"a": "x"}):
        assert not matches("a in {}", labels)
        assert matches("a not in {}", labels)


@pytest.mark.parametrize("op", ["contains", "starts with", "ends with"])
def test_substring_operators_are_false_when_label_absent_even_for_empty_value(op: str) -> None:
    assert not matches(f'a {op} ""', {})
    assert matches(f'a {op} ""', {"a": "anything"})


def test_comparisons_are_case_sensitive() -> None:
    assert not matches('a == "X"', {"a": "x"})
    assert not matches('A == "x"', {"a": "x"})
    assert not matches('a contains "X"', {"a": "xxx"})


def test_label_keys_with_prefix_dots_slashes_dashes_and_underscores() -> None:
    labels = {
        "projectcalico.org/name": "web",
        "k8s-app": "dns",
        "a_b.c/d-e": "v",
        "app.kubernetes.io/part-of": "shop",
        "0": "digit",
    }
    assert matches('projectcalico.org/name == "web"', labels)
    assert matches('k8s-app in {"dns"}', labels)
    assert matches("has(a_b.c/d-e)", labels)
    assert matches('app.kubernetes.io/part-of starts with "sh"', labels)
    assert matches('0 == "digit"', labels)
    assert not matches("has(projectcalico.org)", labels)


def test_values_may_hold_spaces_and_punctuation_verbatim() -> None:
    assert matches('a == "x y && z || !(w)"', {"a": "x y && z || !(w)"})
    assert matches("a == 'has(b)'", {"a": "has(b)"})
    assert matches('a in {"x, y", "}"}', {"a": "x, y"})
    assert matches('a in {"x, y", "}"}', {"a": "}"})


def test_double_quoted_value_may_contain_single_quote() -> None:
    assert matches('a == "it\'s"', {"a": "it's"})


def test_single_quoted_value_may_contain_double_quote() -> None:
    assert matches("a == 'say \"hi\"'", {"a": 'say "hi"'})


def test_set_items_may_mix_quote_kinds() -> None:
    sel = parse('a in {"\'", \'"\', "c"}')
    assert sel.evaluate({"a": "'"})
    assert sel.evaluate({"a": '"'})
    assert sel.evaluate({"a": "c"})
    assert not sel.evaluate({"a": "e"})
    assert not sel.evaluate({})


def test_and_requires_every_operand() -> None:
    text = 'a == "1" && b == "2" && c == "3"'
    assert matches(text, {"a": "1", "b": "2", "c": "3"})
    assert not matches(text, {"a": "1", "b": "2"})
    assert not matches(text, {"b": "2", "c": "3"})
    assert not matches(text, {})


def test_or_requires_any_operand() -> None:
    text = 'a == "1" || b == "2" || c == "3"'
    assert matches(text, {"c": "3"})
    assert matches(text, {"a": "1", "b": "x"})
    assert not matches(text, {"a": "x", "b": "x", "c": "x"})
    assert not matches(text, {})


def test_and_binds_tighter_than_or_on_the_right() -> None:
    # a || (b && c): "a" alone is enough.
    text = "has(a) || has(b) && has(c)"
    assert matches(text, {"a": ""})
    assert not matches(text, {"b": ""})
    assert matches(text, {"b": "", "c": ""})


def test_and_binds_tighter_than_or_on_the_left() -> None:
    # (a && b) || c: "c" alone is enough.
    text = "has(a) && has(b) || has(c)"
    assert matches(text, {"c": ""})
    assert not matches(text, {"a": ""})
    assert matches(text, {"a": "", "b": ""})


def test_parentheses_override_precedence() -> None:
    text = "(has(a) || has(b)) && has(c)"
    assert not matches(text, {"a": ""})
    assert matches(text, {"a": "", "c": ""})
    assert matches(text, {"b": "", "c": ""})


def test_not_binds_tighter_than_and() -> None:
    # (!a) && b, not !(a && b).
    text = "!has(a) && has(b)"
    assert matches(text, {"b": ""})
    assert not matches(text, {})
    assert not matches(text, {"a": "", "b": ""})


def test_not_applies_to_whole_comparison() -> None:
    # !(a == "x"), so it is true when "a" is absent.
    assert matches('!a == "x"', {})
    assert matches('!a == "x" && has(b)', {"b": ""})


def test_not_applies_to_parenthesised_expression() -> None:
    text = "!(has(a) || has(b))"
    assert matches(text, {})
    assert not matches(text, {"a": ""})
    assert not matches(text, {"b": ""})


@pytest.mark.parametrize(
    ("bangs", "negated"), [(1, True), (2, False), (3, True), (4, False), (5, True)]
)
def test_repeated_not_alternates(bangs: int, negated: bool) -> None:
    assert matches("!" * bangs + "has(a)", {}) is negated
    assert matches("!" * bangs + "has(a)", {"a": ""}) is not negated


def test_not_separated_by_spaces_still_counts() -> None:
    assert matches("! ! !has(a)", {})
    assert not matches("!! ! has(a)", {"a": "b"})


def test_nested_parentheses_and_negations() -> None:
    text = '!(!(k == "v" && has(t) || all()) && (a in {"b", "c"}))'
    # all() makes the inner disjunction true, its negation false, the conjunction false.
    assert matches(text, {})
    assert matches(text, {"a": "b"})
    text2 = '((a == "1" || (b == "2" && !(c == "3"))) && !has(d))'
    assert matches(text2, {"a": "1"})
    assert matches(text2, {"b": "2"})
    assert not matches(text2, {"b": "2", "c": "3"})
    assert not matches(text2, {"a": "1", "d": ""})


def test_nesting_up_to_the_limit_is_accepted() -> None:
    depth = 100
    assert matches("(" * depth + "has(a)" + ")" * depth, {"a": ""})


def test_realistic_policy_selector() -> None:
    sel = parse(
        "projectcalico.org/namespace == 'prod' && "
        '(role in {"db", "cache"} || has(debug)) && '
        'tier not in {"frontend"} && !env starts with "test"'
    )
    assert sel.evaluate({"projectcalico.org/namespace": "prod", "role": "db"})
    assert sel.evaluate({"projectcalico.org/namespace": "prod", "debug": "", "tier": "back"})
    assert not sel.evaluate({"projectcalico.org/namespace": "prod", "role": "web"})
    assert not sel.evaluate({"projectcalico.org/namespace": "dev", "role": "db"})
    assert not sel.evaluate(
        {"projectcalico.org/namespace": "prod", "role": "db", "tier": "frontend"}
    )
    assert not sel.evaluate({"projectcalico.org/namespace": "prod", "role": "db", "env": "testing"})


def test_evaluate_accepts_any_mapping() -> None:
    sel = parse('a == "b" && !has(c) && d not in {"x"}')
    assert sel.evaluate(MappingProxyType({"a": "b"}))


def test_evaluate_is_repeatable_and_does_not_mutate_labels() -> None:
    sel = parse('a != "b" && x not in {"y"}')
    labels = {"q": "r"}
    assert sel.evaluate(labels)
    assert sel.evaluate(labels)
    assert labels == {"q": "r"}


def test_parse_returns_selector_and_caches_it() -> None:
    first = parse('a == "cached"')
    assert isinstance(first, Selector)
    assert parse('a == "cached"') is first


def test_all_constant_is_parse_of_all() -> None:
    assert parse("all()") == ALL
    assert parse("") == ALL
    assert str(ALL) == "all()"
    assert ALL.evaluate({})


def test_selector_error_is_value_error_exported_from_package() -> None:
    assert issubclass(SelectorError, ValueError)
    with pytest.raises(ValueError, match="position"):
        parse("a ==")


def test_non_string_input_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse(b'a == "b"')  # type: ignore[arg-type]


def test_package_exports_exactly_the_public_api() -> None:
    assert sorted(selector.__all__) == ["ALL", "Selector", "SelectorError", "parse"]


def test_selector_is_immutable() -> None:
    sel = parse("has(a)")
    with pytest.raises(AttributeError):
        sel.extra = 1  # type: ignore[attr-defined]


def test_syntax_tree_nodes_are_frozen() -> None:
    node = parse('a == "b"').root
    with pytest.raises(AttributeError):
        node.label = "c"  # type: ignore[misc]
