"""Check that two answers agree, and when they don't, say where and by how much.

>>> from streamlab import batch, stream, pipe
>>> p = pipe(seed=2)
>>> agree(batch.summarize(p, limit=200), stream.summarize(p, limit=200))
Agreement: batch and stream agree on all 6 rows × 5 statistics.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from streamlab.summary import Summary

__all__ = ["Agreement", "agree"]

#: Two floats agree when they differ by at most ``ABS_TOL + REL_TOL * |batch|``.
#: Counts must match exactly. Sums of the same values in another order can
#: differ in the last bits (float addition is not associative), hence a tolerance.
REL_TOL = 1e-9
ABS_TOL = 1e-9


@dataclass(frozen=True)
class Agreement:
    """The outcome of :func:`agree`.

    ``table`` is tidy: one row per (key, statistic) with both answers, their
    difference and whether they agree. ``differences`` keeps only the rows that
    don't. ``ok`` is ``True`` when there are none.
    """

    table: pd.DataFrame
    names: tuple[str, str]

    @property
    def differences(self) -> pd.DataFrame:
        return self.table[~self.table["agree"]]

    @property
    def ok(self) -> bool:
        return bool(self.table["agree"].all())

    def __bool__(self) -> bool:
        return self.ok

    def message(self) -> str:
        left, right = self.names
        rows = self.table["key"].nunique()
        stats = self.table["statistic"].nunique()
        if self.ok:
            return f"{left} and {right} agree on all {rows} rows × {stats} statistics."
        lines = [f"{left} and {right} differ on {len(self.differences)} of {len(self.table)} values:"]
        for row in self.differences.itertuples(index=False):
            if pd.isna(row[2]) or pd.isna(row[3]):
                missing = left if pd.isna(row[2]) else right
                lines.append(f"  {row.key} {row.statistic}: no answer from {missing}")
            else:
                lines.append(
                    f"  {row.key} {row.statistic}: {left} {row[2]:g}, {right} {row[3]:g} "
                    f"({left} − {right} = {row.difference:g})"
                )
        return "\n".join(lines)

    def __repr__(self) -> str:
        return f"Agreement: {self.message()}"

    def _repr_html_(self) -> str:
        verdict = "✓" if self.ok else "✗"
        shown = self.table if self.ok else self.differences
        head = self.message().splitlines()[0]
        return f"<p><b>{verdict} {head}</b></p>" + shown.to_html(index=False)


def agree(
    left: Summary | pd.DataFrame,
    right: Summary | pd.DataFrame,
    *,
    names: tuple[str, str] = ("batch", "stream"),
    rel_tol: float = REL_TOL,
    abs_tol: float = ABS_TOL,
) -> Agreement:
    """Compare two answer tables (or the tables of two summaries) value by value.

    Tables are matched on their index (the key) and columns (the statistics);
    row order and integer-versus-float dtypes do not matter. A key or statistic
    present on one side only is a difference.
    """
    for name, side in (("left", left), ("right", right)):
        if not isinstance(side, (Summary, pd.DataFrame)):
            raise TypeError(f"{name} must be a Summary or a DataFrame, got {type(side).__name__} {side!r:.60}")
    for name, tol in (("rel_tol", rel_tol), ("abs_tol", abs_tol)):
        if not (isinstance(tol, (int, float)) and not isinstance(tol, bool) and 0 <= tol <= 1e300):
            raise ValueError(f"{name} must be a finite number >= 0, got {tol!r:.60}")
    rel_tol, abs_tol = float(rel_tol), float(abs_tol)
    if not (isinstance(names, tuple) and len(names) == 2 and all(isinstance(n, str) for n in names) and names[0] != names[1]):
        raise ValueError(f"names must be two different strings, got {names!r:.60}")
    a = left.table if isinstance(left, Summary) else left
    b = right.table if isinstance(right, Summary) else right
    tidy_a = a.rename_axis(index="key", columns="statistic").stack(future_stack=True).rename(names[0])
    tidy_b = b.rename_axis(index="key", columns="statistic").stack(future_stack=True).rename(names[1])
    tidy = pd.concat([tidy_a, tidy_b], axis=1, sort=False).reset_index()
    x = tidy[names[0]].astype("float64")
    y = tidy[names[1]].astype("float64")
    tidy["difference"] = x - y
    both_nan = x.isna() & y.isna()
    close = np.isclose(x, y, rtol=rel_tol, atol=abs_tol) & x.notna() & y.notna()
    exact = tidy["statistic"].eq("count")
    tidy["agree"] = both_nan | np.where(exact, x.eq(y), close)
    return Agreement(table=tidy, names=names)
