"""Render the Grafana dashboard's panels from a real run into a PNG (docs/images/dashboard.png).

    .venv/bin/python -m tests.observability.render_dashboard            # from the repo root
    .venv/bin/python -m tests.observability.render_dashboard --out /tmp/dashboard.png

Starts the local stack with the REAL api and consumer and a Prometheus scraping them
(observability.live), runs the end-to-end test's traffic (observability.traffic), then asks
Prometheus for every panel's expressions over the run (`/api/v1/query_range`) and draws the
panels where the dashboard puts them (gridPos), the repeated "Target" row once per target, with
the panels' titles, legends and units. The steps are spaced out (--pause, 3 s) so that each
shows as its own bump in the rates; about 80 s on two cores.

`render()` is also used by test_end_to_end_real.py on the test's own Prometheus; set
DASHBOARD_PNG=<path> when running that test to keep its picture.
"""

from __future__ import annotations

import argparse
import math
import re
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from .contract_metrics import REPO_ROOT
from .expressions import GRAFANA_BUILTINS, load_dashboard
from .live import grafana_regex_value
from .promql import substitute_grafana_variables
from .traffic import Traffic

DEFAULT_OUT = REPO_ROOT / "docs" / "images" / "dashboard.png"

# Grafana's dark theme and classic palette.
BACKGROUND = "#111217"
PANEL = "#181b1f"
BORDER = "#2c3235"
TEXT = "#ccccdc"
MUTED = "#8e8e9e"
PALETTE = (
    "#73bf69",
    "#f2cc0c",
    "#5794f2",
    "#ff9830",
    "#f2495c",
    "#b877d9",
    "#8ab8ff",
    "#fade2a",
    "#96d98d",
    "#ffb357",
    "#ca95e5",
    "#ff7383",
)
UNIT_SUFFIX = {"cps": "/s", "ops": " ops/s", "reqps": " req/s", "s": " s", "none": ""}
_LEGEND_RE = re.compile(r"\{\{\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\}\}")


@dataclass(frozen=True)
class Series:
    label: str
    times: list[float]
    values: list[float]


@dataclass
class PanelData:
    panel: dict[str, Any]
    title: str
    series: list[Series] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Marks:
    """Moments of the run drawn on every time axis."""

    outage: tuple[float, float] | None = None  # DataHub down: a red band
    lines: tuple[float, ...] = ()  # e.g. mapping file edits: dotted lines
    caption: str = ""


def query_range(
    prom_url: str, expr: str, start: float, end: float, step: float
) -> list[dict[str, Any]]:
    response = httpx.get(
        f"{prom_url}/api/v1/query_range",
        params={"query": expr, "start": f"{start:.3f}", "end": f"{end:.3f}", "step": f"{step}"},
        timeout=30,
    )
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType')}: {body.get('error')} (query {expr})")
    if body["data"]["resultType"] != "matrix":
        raise RuntimeError(f"not a range vector: {expr}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def instant_labels(prom_url: str, expr: str, label: str) -> list[str]:
    response = httpx.get(f"{prom_url}/api/v1/query", params={"query": expr}, timeout=30)
    body = response.json()
    if body.get("status") != "success":
        raise RuntimeError(f"{body.get('errorType')}: {body.get('error')} (query {expr})")
    return sorted({s["metric"][label] for s in body["data"]["result"] if label in s["metric"]})


def legend(fmt: str | None, labels: Mapping[str, str]) -> str:
    if not fmt:
        inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        return f"{{{inner}}}"
    return _LEGEND_RE.sub(lambda m: labels.get(m.group(1), ""), fmt)


def _panels_in_order(dashboard: Mapping[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out.extend(panel.get("panels", []))
    return out


def layout(
    dashboard: Mapping[str, Any], targets: Sequence[str]
) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every panel with its grid position and variable values, the repeated row expanded
    once per target (as Grafana does with "All" selected)."""
    panels = _panels_in_order(dashboard)
    placed: list[tuple[dict[str, Any], dict[str, str]]] = []
    y_shift = 0
    index = 0
    while index < len(panels):
        panel = panels[index]
        if panel.get("type") == "row" and panel.get("repeat"):
            variable = str(panel["repeat"])
            row_y = int(panel["gridPos"]["y"])
            members: list[dict[str, Any]] = []
            index += 1
            while index < len(panels) and panels[index].get("type") != "row":
                members.append(panels[index])
                index += 1
            height = 1 + max((int(p["gridPos"]["h"]) for p in members), default=0)
            for n, value in enumerate(targets or ["(none)"]):
                offset = y_shift + n * height
                placed.append(
                    (
                        {**panel, "gridPos": {**panel["gridPos"], "y": row_y + offset}},
                        {variable: value},
                    )
                )
                for member in members:
                    pos = {**member["gridPos"], "y": int(member["gridPos"]["y"]) + offset}
                    placed.append(({**member, "gridPos": pos}, {variable: value}))
            y_shift += height * (max(len(targets), 1) - 1)
            continue
        pos = {**panel["gridPos"], "y": int(panel["gridPos"]["y"]) + y_shift}
        placed.append(({**panel, "gridPos": pos}, {}))
        index += 1
    return placed


def collect(
    prom_url: str,
    dashboard: Mapping[str, Any],
    start: float,
    end: float,
    *,
    step: float = 1.0,
    rate_interval: str = "10s",
) -> tuple[list[tuple[dict[str, Any], PanelData]], list[str]]:
    """Query every panel over [start, end]; returns the placed panels and the targets."""
    targets = instant_labels(
        prom_url, "group by (target) (lambda_trigger_consumer_invocations_total)", "target"
    )
    base = {
        **GRAFANA_BUILTINS,
        "__rate_interval": rate_interval,
        "__interval": f"{step:g}s",
        "__range": f"{math.ceil(end - start)}s",
        "instance": ".*",
        "api_instance": ".*",
        "target": ".*",
    }
    placed: list[tuple[dict[str, Any], PanelData]] = []
    for panel, values in layout(dashboard, targets):
        title = substitute_grafana_variables(
            str(panel.get("title", "")), {**{k: "" for k in base}, **values}
        )
        data = PanelData(panel, title)
        variables = {**base, **{k: grafana_regex_value(v) for k, v in values.items()}}
        for target in panel.get("targets", []):
            expr = substitute_grafana_variables(str(target.get("expr", "")), variables)
            try:
                result = query_range(prom_url, expr, start, end, step)
            except (RuntimeError, httpx.HTTPError) as exc:
                data.errors.append(str(exc))
                continue
            for item in result:
                data.series.append(
                    Series(
                        legend(target.get("legendFormat"), item["metric"]),
                        [float(t) for t, _v in item["values"]],
                        [float(v) for _t, v in item["values"]],
                    )
                )
        placed.append((panel, data))
    return placed, targets


def _format_value(value: float, unit: str | None) -> str:
    if math.isnan(value):
        return "No data"
    if unit == "percentunit":
        return f"{value * 100:.0f}%"
    if unit == "s":
        if value >= 120:
            return f"{value / 60:.1f} min"
        return f"{value:.3g} s" if value < 10 else f"{value:.0f} s"
    if value == int(value):
        return f"{int(value)}"
    return f"{value:.3g}"


def _last(values: Sequence[float]) -> float:
    for value in reversed(values):
        if not math.isnan(value):
            return value
    return math.nan


def render(
    prom_url: str,
    out: Path,
    start: float,
    end: float,
    *,
    marks: Marks | None = None,
    rate_interval: str = "10s",
    subtitle: str = "",
) -> list[PanelData]:
    """Draw the dashboard over [start, end] into `out`; returns what each panel showed."""
    dashboard = load_dashboard()
    placed, _targets = collect(prom_url, dashboard, start, end, rate_interval=rate_interval)
    return draw(
        placed,
        out,
        start,
        end,
        title=str(dashboard.get("title", "Dashboard")),
        marks=marks,
        subtitle=subtitle,
    )


def draw(
    placed: Sequence[tuple[dict[str, Any], PanelData]],
    out: Path,
    start: float,
    end: float,
    *,
    title: str,
    marks: Marks | None = None,
    subtitle: str = "",
) -> list[PanelData]:
    """Draw panels (as `collect` returns them) into a PNG."""
    try:
        import matplotlib
    except ImportError as exc:  # a dev dependency (pyproject.toml)
        raise RuntimeError(
            "matplotlib is needed to draw the dashboard: .venv/bin/pip install matplotlib"
        ) from exc

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import FancyBboxPatch
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    marks = marks or Marks()
    rows = max(int(p["gridPos"]["y"]) + int(p["gridPos"]["h"]) for p, _d in placed)
    width_in, unit_in, header_in = 22.0, 0.38, 1.1  # figure width, one grid row, header
    height_in = header_in + rows * unit_in + 0.2
    fig = plt.figure(figsize=(width_in, height_in), facecolor=BACKGROUND, dpi=100)
    margin_in, gap_in = 0.25, 0.12

    def fx(inches: float) -> float:
        return inches / width_in

    def fy(inches: float) -> float:
        return inches / height_in

    def top_of(grid_y: int) -> float:  # figure fraction
        return 1 - fy(header_in + grid_y * unit_in)

    fig.text(
        fx(margin_in),
        1 - fy(0.35),
        title,
        color=TEXT,
        fontsize=20,
        fontweight="bold",
        va="center",
    )
    fig.text(fx(margin_in), 1 - fy(0.68), subtitle, color=MUTED, fontsize=11, va="center")
    if marks.caption:
        fig.text(fx(margin_in), 1 - fy(0.95), marks.caption, color=MUTED, fontsize=11, va="center")

    results: list[PanelData] = []
    column_in = (width_in - 2 * margin_in) / 24
    for panel, data in placed:
        pos = panel["gridPos"]
        x, y, w, h = int(pos["x"]), int(pos["y"]), int(pos["w"]), int(pos["h"])
        left_in = margin_in + x * column_in + gap_in / 2
        box_w_in = w * column_in - gap_in
        top = top_of(y) - fy(gap_in / 2)
        box_h_in = h * unit_in - gap_in
        if panel.get("type") == "row":
            fig.text(
                fx(left_in),
                top - fy(box_h_in / 2),
                data.title,
                color=TEXT,
                fontsize=14,
                fontweight="bold",
                va="center",
            )
            continue
        results.append(data)
        fig.add_artist(
            FancyBboxPatch(
                (fx(left_in), top - fy(box_h_in)),
                fx(box_w_in),
                fy(box_h_in),
                boxstyle="round,pad=0,rounding_size=0.002",
                transform=fig.transFigure,
                facecolor=PANEL,
                edgecolor=BORDER,
                linewidth=1,
                zorder=-10,  # behind the panel's axes
            )
        )
        fig.text(
            fx(left_in + 0.12),
            top - fy(0.2),
            data.title,
            color=TEXT,
            fontsize=11,
            fontweight="bold",
            va="center",
        )
        unit = panel.get("fieldConfig", {}).get("defaults", {}).get("unit")
        inner_top = top - fy(0.4)
        inner_bottom = top - fy(box_h_in)
        center_x = fx(left_in + box_w_in / 2)
        center_y = (inner_top + inner_bottom) / 2
        if data.errors:
            fig.text(
                center_x,
                center_y,
                "\n".join(data.errors)[:300],
                color=PALETTE[4],
                fontsize=8,
                ha="center",
                va="center",
                wrap=True,
            )
            continue
        if panel.get("type") == "stat":
            if not data.series:
                fig.text(
                    center_x,
                    center_y,
                    "No data",
                    color=MUTED,
                    fontsize=20,
                    ha="center",
                    va="center",
                )
                continue
            templated = "{{" in str(panel["targets"][0].get("legendFormat"))
            for n, stat in enumerate(data.series):
                y_mid = inner_top - (n + 0.5) * (inner_top - inner_bottom) / len(data.series)
                value = _format_value(_last(stat.values), unit)
                if templated:
                    fig.text(
                        center_x,
                        y_mid + fy(0.18),
                        stat.label,
                        color=MUTED,
                        fontsize=10,
                        ha="center",
                        va="center",
                    )
                    y_mid -= fy(0.12)
                fig.text(
                    center_x,
                    y_mid,
                    value,
                    color=PALETTE[0],
                    fontsize=26 if not templated else 20,
                    fontweight="bold",
                    ha="center",
                    va="center",
                )
            continue
        series = sorted(data.series, key=lambda s: s.label)
        longest = max((len(item.label) for item in series), default=0)
        ncol = max(1, int(box_w_in // (0.55 + 0.075 * longest)))
        legend_rows = math.ceil(len(series) / ncol) if series else 0
        legend_in = 0.08 + legend_rows * 0.19
        axis_left_in, axis_bottom_in = 0.75, 0.3
        ax = fig.add_axes(
            (
                fx(left_in + axis_left_in),
                inner_bottom + fy(axis_bottom_in + legend_in),
                fx(box_w_in - axis_left_in - 0.2),
                inner_top - inner_bottom - fy(axis_bottom_in + legend_in + 0.08),
            )
        )
        ax.set_facecolor(PANEL)
        for spine in ax.spines.values():
            spine.set_visible(False)
        ax.tick_params(colors=MUTED, labelsize=8, length=0, pad=4)
        ax.grid(color=BORDER, linewidth=0.6)
        ax.set_xlim(start, end)
        ax.xaxis.set_major_locator(MaxNLocator(max(3, int(box_w_in / 1.4))))
        ax.xaxis.set_major_formatter(
            FuncFormatter(lambda v, _p: datetime.fromtimestamp(v, tz=UTC).strftime("%H:%M:%S"))
        )
        ax.yaxis.set_major_locator(MaxNLocator(5))
        if marks.outage is not None:
            ax.axvspan(*marks.outage, color=PALETTE[4], alpha=0.14, linewidth=0)
        for at in marks.lines:
            ax.axvline(at, color=PALETTE[5], linestyle=":", linewidth=1.2)
        if not series:
            ax.text(
                0.5,
                0.5,
                "No data",
                color=MUTED,
                fontsize=14,
                ha="center",
                va="center",
                transform=ax.transAxes,
            )
            continue
        colors = [PALETTE[i % len(PALETTE)] for i in range(len(series))]
        stacking = panel.get("fieldConfig", {}).get("defaults", {}).get("custom", {})
        if stacking.get("stacking", {}).get("mode") == "normal":
            times = series[0].times
            aligned = []
            for item in series:
                by_time = dict(zip(item.times, item.values, strict=True))
                aligned.append([_zero_nan(by_time.get(t, math.nan)) for t in times])
            ax.stackplot(times, aligned, labels=[s.label for s in series], colors=colors, alpha=0.8)
        else:
            for item, color in zip(series, colors, strict=True):
                ax.plot(item.times, item.values, label=item.label, color=color, linewidth=1.6)
        if unit == "percentunit":
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p: f"{v * 100:.0f}%"))
        else:
            suffix = UNIT_SUFFIX.get(str(unit), "")
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _p, s=suffix: f"{v:.3g}{s}"))
        ax.set_ylim(bottom=0)
        ax.legend(
            loc="upper left",
            bbox_to_anchor=(fx(left_in + 0.1), inner_bottom + fy(legend_in)),
            bbox_transform=fig.transFigure,
            borderaxespad=0,
            fontsize=8.5,
            frameon=False,
            labelcolor=TEXT,
            ncol=ncol,
            handlelength=1.2,
            columnspacing=1.2,
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, facecolor=BACKGROUND)
    plt.close(fig)
    return results


def _zero_nan(value: float) -> float:
    return 0.0 if math.isnan(value) else value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument(
        "--rate-interval",
        default="10s",
        help="value of $__rate_interval (Grafana would use 4 s for 1 s scrapes; 10 s reads better)",
    )
    parser.add_argument(
        "--pause", type=float, default=3.0, help="seconds between the traffic's steps"
    )
    args = parser.parse_args(argv)

    from .live import live_stack
    from .traffic import drive_traffic

    with (
        tempfile.TemporaryDirectory(prefix="render-dashboard-") as workdir,
        live_stack(Path(workdir)) as live,
    ):
        traffic = drive_traffic(live, pause=args.pause)
        time.sleep(2)  # a couple more scrapes after the last step, for the right edge
        rendered = render(
            live.prom.url,
            args.out,
            traffic.start.wall - 3,
            time.time(),
            marks=marks_of(traffic),
            rate_interval=args.rate_interval,
            subtitle=subtitle(args.rate_interval),
        )
    empty = [d.title for d in rendered if not d.series or d.errors]
    print(f"wrote {args.out} ({len(rendered)} panels)")
    if empty:
        print(f"panels without data: {empty}", file=sys.stderr)
        return 1
    return 0


def marks_of(traffic: Traffic) -> Marks:
    return Marks(
        outage=traffic.outage,
        lines=tuple(traffic.mapping_edits),
        caption=(
            "Red band: DataHub GMS down while a run is in flight.   Dotted lines: the mapping "
            "file edited (a valid edit, then a broken one).   Before the band: runs that "
            "succeed, fail in the function, cannot be invoked; 4xx calls; an undecodable record; "
            "an unmapped dataset."
        ),
    )


def subtitle(rate_interval: str) -> str:
    return (
        "Rendered from a real run: the api and consumer on the local stack (Kafka, GMS test "
        "double, moto), scraped every 1 s by Prometheus, driven by "
        "tests/observability/traffic.py. $__rate_interval = "
        f"{rate_interval}, instance / target = All."
    )


if __name__ == "__main__":
    sys.exit(main())
