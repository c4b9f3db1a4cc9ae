"""Pictures for fraud detection: where the swipes were, how long alerts took, what money was saved."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter

from streamlab import fraud
from streamlab.fraud import OUTCOMES, TRAVEL, Detection
from streamlab.purchases import Purchase, purchases_frame


def arc(lat1: float, lon1: float, lat2: float, lon2: float, points: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A curved line between two places on a latitude-longitude map, the short way round.

    Like a flight route on a wall map: it bulges to one side of the straight
    line, and crosses the antimeridian when that way is shorter (longitudes come
    back wrapped into -180..180). A picture, not a route: the distance the rules
    use is :func:`streamlab.fraud.distance_km`.

    >>> lat, lon = arc(0.0, 170.0, 0.0, -170.0, points=3)
    >>> lon.round(6).tolist()
    [170.0, 180.0, -170.0]
    """
    if lon2 - lon1 > 180:
        lon2 -= 360
    elif lon1 - lon2 > 180:
        lon2 += 360
    start, end = np.array([lon1, lat1]), np.array([lon2, lat2])
    # A quadratic Bezier curve whose control point sits off the midpoint, to the north.
    middle = (start + end) / 2
    normal = np.array([-(end - start)[1], (end - start)[0]]) * 0.25
    control = middle + (normal if normal[1] >= 0 else -normal)
    f = np.linspace(0.0, 1.0, points)[:, None]
    path = (1 - f) ** 2 * start + 2 * (1 - f) * f * control + f**2 * end
    lon = (path[:, 0] + 180.0) % 360.0 - 180.0
    # Keep an end exactly on the antimeridian where it was given there.
    lon[np.isclose(path[:, 0], 180.0)] = 180.0
    return path[:, 1], lon


def _split_at_antimeridian(lat: np.ndarray, lon: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Cut a path where it jumps from one edge of the map to the other, so no line crosses the whole map."""
    jumps = np.flatnonzero(np.abs(np.diff(lon)) > 180) + 1
    return list(zip(np.split(lat, jumps), np.split(lon, jumps)))


def swipe_map(
    pile: Iterable[Purchase] | pd.DataFrame, detection: Detection, *, ax: Axes | None = None
) -> Axes:
    """Draw where the swipes were, and each impossible-travel pair as an arc.

    Dots are cities, sized by how many swipes they saw; an arc joins the two
    cities of a flagged pair and ends in a cross at the swipe blamed. The map is
    plain latitude against longitude: no tiles, no network.
    """
    ax = ax or plt.gca()
    frame = pile if isinstance(pile, pd.DataFrame) else purchases_frame(pile)
    where = frame.dropna(subset=["lat", "lon"])
    cities = where.groupby("city").agg(lat=("lat", "mean"), lon=("lon", "mean"), swipes=("purchase_id", "size"))
    ax.scatter(cities["lon"], cities["lat"], s=8 + 60 * np.sqrt(cities["swipes"] / cities["swipes"].max()),
               color="C0", alpha=0.5, label="swipes (dot size: how many)", zorder=2)

    travel = detection.alerts[detection.alerts["rule"] == TRAVEL]
    located = where.set_index("purchase_id")[["city", "lat", "lon"]]
    pairs = travel.join(located, on="partner_id").join(located.add_suffix("_blamed"), on="purchase_id")
    pairs = pairs.drop_duplicates(subset=["city", "city_blamed"])
    for i, row in enumerate(pairs.itertuples(index=False)):
        lat, lon = arc(row.lat, row.lon, row.lat_blamed, row.lon_blamed)
        for j, (seg_lat, seg_lon) in enumerate(_split_at_antimeridian(lat, lon)):
            ax.plot(seg_lon, seg_lat, color="C3", linewidth=1.2, alpha=0.8, zorder=3,
                    label="impossible travel: the pair" if i == j == 0 else None)
        ax.plot(row.lon_blamed, row.lat_blamed, marker="x", color="C3", markersize=8, linestyle="none", zorder=4,
                label="the swipe blamed" if i == 0 else None)
    named = set(pairs["city"]) | set(pairs["city_blamed"])
    labelled = cities.loc[sorted(named & set(cities.index))]

    ax.set_xlim(-180, 180)
    ax.set_ylim(-70, 90)
    ax.set_aspect("equal")
    ax.set_xticks(range(-180, 181, 60))
    ax.set_yticks(range(-60, 91, 30))
    degrees = FuncFormatter(lambda v, _: f"{v:.0f}°")
    ax.xaxis.set_major_formatter(degrees)
    ax.yaxis.set_major_formatter(degrees)
    ax.set_xlabel("longitude")
    ax.set_ylabel("latitude")
    ax.set_title("Where the swipes were, and the pairs no one could travel")
    ax.legend(loc="lower left")
    _label_without_collisions(ax, labelled)
    return ax


# Where a city's name may go, in points from its dot, nearest first: beside it, then further out with a
# leader line. Cities a few degrees apart (Toronto, Boston, New York) need the further ones.
_SPOTS = [(4, 4, "left"), (4, -11, "left"), (-4, 4, "right"), (-4, -11, "right")] + [
    (dx * r, dy * r, "left" if dx > 0 else "right" if dx < 0 else "center")
    for r in (14, 24, 34) for dx, dy in [(1, 1), (1, -1), (-1, 1), (-1, -1), (0, 1), (0, -1), (1, 0), (-1, 0)]]


def _label_without_collisions(ax: Axes, cities: pd.DataFrame) -> None:
    """Name each city at the first spot where its name overlaps no name already placed (nor the legend)."""
    fig = ax.figure
    fig.canvas.draw()  # the final layout: names are placed in the pixels they will be drawn at
    renderer = fig.canvas.get_renderer()
    taken = [ax.get_legend().get_window_extent(renderer)] if ax.get_legend() else []
    frame = ax.get_window_extent(renderer)
    for city, row in cities.sort_values(["lon", "lat"]).iterrows():
        label = None
        for dx, dy, align in _SPOTS:
            far = abs(dx) > 4 or abs(dy) > 11
            label = ax.annotate(
                city, (row["lon"], row["lat"]), textcoords="offset points", xytext=(dx, dy), fontsize="small",
                ha=align, va="bottom" if dy > 0 else "top" if dy < -4 else "center",
                arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.6, "shrinkA": 0, "shrinkB": 2}
                if far else None)
            box = label.get_window_extent(renderer).expanded(1.05, 1.1)
            inside = frame.x0 <= box.x0 and box.x1 <= frame.x1 and frame.y0 <= box.y0 and box.y1 <= frame.y1
            if inside and not any(box.overlaps(other) for other in taken):
                break
            label.remove()
            label = None
        if label is None:  # nowhere free: the nearest spot, overlapping (never seen on the lesson's map)
            label = ax.annotate(city, (row["lon"], row["lat"]), textcoords="offset points", xytext=(4, 4),
                                fontsize="small")
        taken.append(label.get_window_extent(renderer))


#: Tick marks for durations on a log scale, in seconds.
_DURATIONS = {1: "1 s", 10: "10 s", 60: "1 min", 600: "10 min", 3600: "1 h", 6 * 3600: "6 h", 86400: "1 day"}


def alert_latency(detections: Mapping[str, Detection], *, ax: Axes | None = None) -> Axes:
    """Histogram, on a log scale, of how long after each flagged purchase its first alert came, per driver.

    ``detections`` maps a label (``"stream"``, ``"batch"``) to that driver's detection.
    """
    ax = ax or plt.gca()
    seconds = {name: fraud.alert_latency(d).dt.total_seconds() for name, d in detections.items()}
    low = min((s[s > 0].min() for s in seconds.values() if (s > 0).any()), default=1.0)
    high = max((s.max() for s in seconds.values() if len(s)), default=86400.0)
    bins = np.geomspace(min(low, 1.0) / 1.5, max(high, 86400.0) * 1.5, 60)
    for i, (name, s) in enumerate(seconds.items()):
        ax.hist(s.clip(lower=bins[0]), bins=bins, alpha=0.7, color=f"C{i}", label=f"{name} ({len(s)} flagged)")
    ax.set_xscale("log")
    ax.set_xticks(list(_DURATIONS), list(_DURATIONS.values()))
    ax.minorticks_off()
    ax.set_xlabel("from the swipe to its first alert")
    ax.set_ylabel("flagged purchases")
    ax.set_title("How long until the phone buzzes?")
    ax.legend(loc="upper center")
    return ax


def money_at_stake(outcomes: Mapping[str, pd.DataFrame], *, ax: Axes | None = None) -> Axes:
    """Stacked bars, one per driver: fraud money stopped in time, found afterwards, and missed.

    ``outcomes`` maps a label to the frame :func:`streamlab.fraud.money_at_stake` returns.
    """
    ax = ax or plt.gca()
    names = list(outcomes)
    totals = pd.DataFrame(
        {name: frame.groupby("outcome", observed=False)["amount"].sum() for name, frame in outcomes.items()}
    ).reindex(list(OUTCOMES)).fillna(0.0)
    colors = {"stopped in time": "C2", "found afterwards": "C1", "missed": "C7"}
    left = np.zeros(len(names))
    for outcome, row in totals.iterrows():
        values = row[names].to_numpy(dtype=float)
        ax.barh(names, values, left=left, color=colors[outcome], label=outcome)
        left += values
    ax.invert_yaxis()
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"${v:,.0f}"))
    ax.set_xlabel("fraudulent purchases, total amount")
    ax.set_title("The money at stake, had each card been blocked at its first alert")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=len(OUTCOMES))
    return ax
