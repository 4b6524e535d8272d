"""Calico's label selector language.

    >>> sel = parse('role == "db" && !has(quarantined)')
    >>> sel.evaluate({"role": "db"})
    True
    >>> str(sel)
    '(role == "db" && !has(quarantined))'

`parse` raises SelectorError (a ValueError) with the 0-based position of the problem.
"""

from pycalico.selector.errors import SelectorError
from pycalico.selector.selector import ALL, Selector, parse

__all__ = ["ALL", "Selector", "SelectorError", "parse"]
