"""Markdown tables and number formatting shared by every text report."""

import math


def number(value, digits=4):
    """Fixed decimals for table cells; 'n/a' for values a run did not produce (NaN)."""
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def mean_std(mean, std, digits=4):
    return f"{number(mean, digits)} ± {number(std, digits)}"


def table(header, rows):
    """A GitHub-flavoured markdown table; cells are converted with str()."""
    lines = [header, ["---"] * len(header), *rows]
    return "\n".join("| " + " | ".join(map(str, line)) + " |" for line in lines) + "\n"
