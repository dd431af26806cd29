"""Schema changes and drift between two profiles of one variable (runtime/profile.py), from their
stored sketches alone.

The statistic is the **population stability index** (PSI) over ten bins:

    PSI = Σ_bins (b − a) · ln(b / a)        a, b: the baseline's and the new value's share of a bin

Numeric columns are binned at the baseline's deciles (read off its 21-point quantile sketch; the new
value's share of each bin is read off its own sketch by linear interpolation of the CDF). Categorical
columns use the union of both runs' top categories plus "other". Missing values are one more bin in
both, so a column that starts having nulls drifts too.

Why PSI rather than KS or a test's p-value:
- it needs only what the profile stores (a fixed-size sketch, no raw data), so comparing costs the
  same for ten rows or a billion;
- one statistic and one scale for numeric and categorical columns, so one threshold in same.yaml
  means the same thing for both (KS has no categorical form);
- for fixed bins it is symmetric in the two runs' shares (the bins are the baseline's deciles, so
  swapping the runs can change the figure), and it has long-used readings: below 0.1 stable, 0.1–0.25
  a moderate shift, above 0.25 a significant one; a p-value would instead flag every tiny shift of a
  large sample and miss large shifts of a small one.
The KS distance (largest gap between the two CDFs, read off the sketches) is reported beside it for
numeric columns, as a reading in the data's own terms; checks use PSI.
"""
from __future__ import annotations

import math
from typing import Any

from same_nb.text import number_text

PSI_BINS = 10
PSI_FLOOR = 1e-4           # a share of 0 would make ln(b/a) infinite: empty bins count as this
PSI_MODERATE, PSI_SIGNIFICANT = 0.1, 0.25


def psi_reading(psi: float | None) -> str:
    if psi is None:
        return "n/a"
    return "stable" if psi < PSI_MODERATE else "moderate" if psi < PSI_SIGNIFICANT else "significant"


def compare_profiles(a: dict, b: dict) -> dict:
    """``{"schema": [changes], "rows": [a, b], "columns": [{name, dtype, psi, ks, ...}]}`` from
    baseline profile ``a`` to new profile ``b``. A schema change is ``{"change": "added" | "removed" |
    "dtype" | "kind", "column", "from", "to"}``."""
    schema: list[dict] = []
    if a.get("kind") != b.get("kind"):
        schema.append({"change": "kind", "column": None, "from": a.get("kind"), "to": b.get("kind")})
    cols_a = {c["name"]: c for c in a.get("column_stats", [])}
    cols_b = {c["name"]: c for c in b.get("column_stats", [])}
    schema += [{"change": "removed", "column": n, "from": cols_a[n]["dtype"], "to": None}
               for n in cols_a if n not in cols_b and _complete(b)]
    schema += [{"change": "added", "column": n, "from": None, "to": cols_b[n]["dtype"]}
               for n in cols_b if n not in cols_a and _complete(a)]
    columns = []
    for name, ca in cols_a.items():
        cb = cols_b.get(name)
        if cb is None:
            continue
        if ca["dtype"] != cb["dtype"]:
            schema.append({"change": "dtype", "column": name, "from": ca["dtype"], "to": cb["dtype"]})
        columns.append({"name": name, "dtype": cb["dtype"], **column_drift(ca, cb)})
    if a.get("columns") != b.get("columns") and not any(c["change"] in ("added", "removed") for c in schema):
        schema.append({"change": "columns", "column": None, "from": a.get("columns"), "to": b.get("columns")})
    return {"schema": schema, "rows": [a.get("rows"), b.get("rows")], "columns": columns,
            "sampled": bool(a.get("sample") or b.get("sample"))}


def _complete(profile: dict) -> bool:
    """Every column was profiled, so a name missing from it is really gone (not beyond MAX_COLUMNS)."""
    return profile.get("profiled_columns", 0) >= profile.get("columns", 0)


def column_drift(a: dict, b: dict) -> dict:
    """PSI (and KS for numeric columns) of one column; ``psi`` None when the two cannot be compared
    (numeric in one run, categorical in the other, or no values at all)."""
    null_a, null_b = a.get("null_fraction", 0.0), b.get("null_fraction", 0.0)
    if a.get("numeric") and b.get("numeric") and a.get("quantiles") and b.get("quantiles"):
        qa, qb = a["quantiles"], b["quantiles"]
        edges = sorted(set(_quantile_at(qa, i / PSI_BINS) for i in range(1, PSI_BINS)))
        shares_a = _bin_shares(qa, edges)
        shares_b = _bin_shares(qb, edges)
        ks = max(abs(_cdf(qa, v) - _cdf(qb, v)) for v in sorted(set(qa) | set(qb)))
        return {"psi": _psi(_with_nulls(shares_a, null_a), _with_nulls(shares_b, null_b)), "ks": round(ks, 6),
                "mean": [a.get("mean"), b.get("mean")], "statistic": "psi"}
    if a.get("numeric") is False and b.get("numeric") is False:
        keys = list(dict.fromkeys([k for k, _ in a.get("top", [])] + [k for k, _ in b.get("top", [])]))
        shares_a, shares_b = _category_shares(a, keys), _category_shares(b, keys)
        return {"psi": _psi(_with_nulls(shares_a, null_a), _with_nulls(shares_b, null_b)), "statistic": "psi",
                "top": [a.get("top", [])[:1], b.get("top", [])[:1]]}
    if null_a != null_b and (a.get("numeric") == b.get("numeric")):
        return {"psi": _psi([1 - null_a, null_a], [1 - null_b, null_b]), "statistic": "psi"}
    return {"psi": None, "statistic": "psi"}


def _quantile_at(q: list[float], p: float) -> float:
    """The value at probability ``p`` of an evenly spaced quantile sketch."""
    position = p * (len(q) - 1)
    low = int(math.floor(position))
    high = min(low + 1, len(q) - 1)
    return q[low] + (q[high] - q[low]) * (position - low)


def _cdf(q: list[float], v: float) -> float:
    """P(X ≤ v) from an evenly spaced quantile sketch; a run of equal values is a point mass."""
    n = len(q) - 1
    if v < q[0]:
        return 0.0
    if v >= q[-1]:
        return 1.0
    i = max(k for k in range(n + 1) if q[k] <= v)       # n is 20: no need for bisect's subtleties
    if q[i + 1] == q[i]:
        return i / n
    return (i + (v - q[i]) / (q[i + 1] - q[i])) / n


def _bin_shares(q: list[float], edges: list[float]) -> list[float]:
    cdf = [_cdf(q, e) for e in edges]
    bounds = [0.0, *cdf, 1.0]
    return [max(0.0, high - low) for low, high in zip(bounds, bounds[1:])]


def _category_shares(c: dict, keys: list[str]) -> list[float]:
    top = dict(c.get("top", []))
    complete = c.get("distinct", 0) <= len(top)
    # A category another run lists but this one does not: absent when this run listed every category,
    # else somewhere in this run's "other", at most as frequent as its rarest listed category.
    guess = 0.0 if complete else min([c.get("other_fraction", 0.0), *top.values()])
    shares = [top.get(k, guess) for k in keys]
    return [*shares, max(0.0, 1.0 - sum(shares))]


def _with_nulls(shares: list[float], null_fraction: float) -> list[float]:
    return [s * (1.0 - null_fraction) for s in shares] + [null_fraction]


def _psi(a: list[float], b: list[float]) -> float:
    total = 0.0
    for x, y in zip(a, b):
        x, y = max(x, PSI_FLOOR), max(y, PSI_FLOOR)
        total += (y - x) * math.log(y / x)
    return round(total, 6)


def worst_column(drift: dict) -> dict | None:
    """The column with the highest PSI, or None."""
    scored = [c for c in drift.get("columns", []) if c.get("psi") is not None]
    return max(scored, key=lambda c: c["psi"]) if scored else None


def schema_text(change: dict) -> str:
    what, column = change["change"], change["column"]
    if what == "added":
        return f"column {column!r} added ({change['to']})"
    if what == "removed":
        return f"column {column!r} removed (was {change['from']})"
    if what == "dtype":
        return f"column {column!r} dtype {change['from']} → {change['to']}"
    if what == "kind":
        return f"value kind {change['from']} → {change['to']}"
    return f"columns {change['from']} → {change['to']}"


def describe_column(column: dict) -> str:
    parts = [f"PSI {_num(column['psi'])} ({psi_reading(column['psi'])})"]
    if column.get("ks") is not None:
        parts.append(f"KS {_num(column['ks'])}")
    if column.get("mean") and None not in column["mean"]:
        parts.append(f"mean {_num(column['mean'][0])} → {_num(column['mean'][1])}")
    return ", ".join(parts)


def _num(value: Any) -> str:
    return "—" if value is None else number_text(value)
