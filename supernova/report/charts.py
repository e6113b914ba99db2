"""Hand-written SVG charts for the offline HTML report: horizontal bars, 100 % stacked bars,
a daily line with incomplete days marked, and a heatmap with suppressed cells.

They stay hand-written (issue #18 asked for a plotting library unless these stay simpler):
matplotlib is not a dependency of the project, and these ~200 lines write small, static,
script-free SVG with <title> tooltips, aria labels and the page's own CJK font stack, which
a library's SVG backend would embed as paths or fonts of its own."""

from __future__ import annotations

import html

PALETTE = ["#2f6db5", "#e08a1e", "#3c9a5f", "#b8433a", "#7b5ea7", "#8c6d46", "#c05c9e", "#6d7a86"]
E = html.escape


def _num(v: float, money: bool = False) -> str:
    if money:
        return f"{v:,.2f}"
    return f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}"


TITLE_H, XLABEL_H = 24, 18


def _svg(
    width: int, height: int, title: str, body: list[str], x_label: str = "", y_label: str = ""
) -> str:
    """A chart: its title drawn on top (and as <title> / aria-label), the plot below it,
    and the axis labels: x_label under the plot, y_label rotated along its left edge."""
    full = TITLE_H + height + (XLABEL_H if x_label else 0)
    parts = [
        f'<text class="chart-title" x="0" y="16" font-weight="600" font-size="13">{E(title)}</text>',
        f'<g transform="translate(0,{TITLE_H})">',
        *body,
        "</g>",
    ]
    if x_label:
        parts.append(
            f'<text class="axis-label" x="{width / 2:.0f}" y="{full - 4}" text-anchor="middle" '
            f'font-size="11" fill="#4a5561">{E(x_label)}</text>'
        )
    if y_label:
        mid = TITLE_H + height / 2
        parts.append(
            f'<text class="axis-label" x="11" y="{mid:.0f}" text-anchor="middle" font-size="11" '
            f'fill="#4a5561" transform="rotate(-90 11 {mid:.0f})">{E(y_label)}</text>'
        )
    return (
        f'<svg class="chart" width="{width}" height="{full}" '
        f'viewBox="0 0 {width} {full}" role="img" aria-label="{E(title)}"><title>{E(title)}</title>'
        + "".join(parts)
        + "</svg>"
    )


def _empty(title: str, width=640) -> str:
    return _svg(
        width,
        40,
        title,
        [
            '<rect class="frame" x="0" y="0" width="100%" height="40" fill="#f4f5f7"/>',
            '<text x="12" y="25" fill="#666">no data for this chart</text>',
        ],
    )


def bar_chart(
    items: list[tuple[str, float]],
    title: str,
    money=False,
    width=640,
    color=PALETTE[0],
    x_label: str = "",
    y_label: str = "",
) -> str:
    """Horizontal bars; negative values drawn by magnitude in red, with their sign in the label.
    x_label names the bars' values, y_label what the bars are."""
    if not items:
        return _empty(title, width)
    row, label_w, value_w = 24, 170, 110
    height = row * len(items) + 10
    top = max(abs(float(v)) for _, v in items) or 1.0
    span = width - label_w - value_w - 10
    body = []
    for i, (label, v) in enumerate(items):
        y = 5 + i * row
        w = max(abs(float(v)) / top * span, 1.0 if v else 0.0)
        fill = "#b8433a" if float(v) < 0 else color
        body.append(
            f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{E(str(label))}</text>'
        )
        body.append(
            f'<rect class="mark" x="{label_w}" y="{y + 3}" width="{w:.1f}" height="{row - 7}" fill="{fill}">'
            f"<title>{E(str(label))}: {_num(float(v), money)}</title></rect>"
        )
        body.append(f'<text x="{label_w + w + 6:.1f}" y="{y + 16}">{_num(float(v), money)}</text>')
    return _svg(width, height, title, body, x_label, y_label)


def stacked_bars(
    rows: list[tuple[str, dict]],
    series: list[str],
    title: str,
    width=640,
    x_label: str = "",
    y_label: str = "",
) -> str:
    """One horizontal 100 % bar per row, split by series, with a legend."""
    rows = [(k, v) for k, v in rows if sum(v.values())]
    if not rows:
        return _empty(title, width)
    row, label_w = 26, 120
    span = width - label_w - 60
    body = []
    for j, s in enumerate(series):
        x = label_w + j * 110
        body.append(
            f'<rect x="{x}" y="4" width="12" height="12" fill="{PALETTE[j % len(PALETTE)]}"/>'
            f'<text x="{x + 16}" y="15">{E(s)}</text>'
        )
    for i, (label, counts) in enumerate(rows):
        y = 26 + i * row
        total = sum(counts.values())
        x = float(label_w)
        body.append(f'<text x="{label_w - 6}" y="{y + 16}" text-anchor="end">{E(label)}</text>')
        for j, s in enumerate(series):
            n = counts.get(s, 0)
            if not n:
                continue
            w = n / total * span
            body.append(
                f'<rect class="mark" x="{x:.1f}" y="{y + 3}" width="{w:.1f}" height="{row - 8}" '
                f'fill="{PALETTE[j % len(PALETTE)]}"><title>{E(label)} · {E(s)}: {n:,} '
                f"({n / total:.0%})</title></rect>"
            )
            if w > 28:
                body.append(f'<text x="{x + 4:.1f}" y="{y + 16}" fill="#fff">{n:,}</text>')
            x += w
        body.append(f'<text x="{x + 6:.1f}" y="{y + 16}">{total:,}</text>')
    return _svg(width, 30 + row * len(rows), title, body, x_label, y_label)


def _incomplete_marks(
    points, missing: list[int], xy, step: float, top: int, ph: int, note: str
) -> list[str]:
    """A shaded column per day without complete data, and the word "incomplete" once."""
    body = []
    for i in missing:
        x, _ = xy(i, 0)
        body.append(
            f'<rect class="incomplete" x="{x - step / 2:.1f}" y="{top}" width="{step:.1f}" height="{ph}" '
            f'fill="#f1e9d2"><title>{E(points[i][0])}: incomplete{": " + E(note) if note else ""}'
            "</title></rect>"
        )
    if missing:
        x0, _ = xy(missing[0], 0)
        body.append(
            f'<text x="{x0:.1f}" y="{top + 12}" font-size="10" fill="#8a6d00">incomplete</text>'
        )
    return body


def _y_grid(hi: float, left: int, top: int, pw: float, ph: float, percent: bool) -> list[str]:
    body = []
    for k in range(5):
        v = hi * k / 4
        y = top + ph - ph * k / 4
        lab = f"{v:.0%}" if percent else f"{v:,.2f}"
        body.append(
            f'<line x1="{left}" y1="{y:.1f}" x2="{left + pw}" y2="{y:.1f}" stroke="#e3e5e8"/>'
            f'<text x="{left - 4}" y="{y + 4:.1f}" text-anchor="end" font-size="10">{lab}</text>'
        )
    return body


def _polylines(vals: list[float | None], xy, color: str) -> list[str]:
    """One polyline per run of days with data: the line breaks at a day without."""
    body: list[str] = []
    segment: list[str] = []
    for i, v in enumerate(vals + [None]):
        if v is None:
            if segment:
                body.append(
                    f'<polyline class="mark" points="{" ".join(segment)}" fill="none" stroke="{color}" '
                    'stroke-width="2"/>'
                )
            segment = []
            continue
        x, y = xy(i, v)
        segment.append(f"{x:.1f},{y:.1f}")
    return body


def _points_and_ticks(points, xy, height: int, percent: bool, color: str) -> list[str]:
    body = []
    n = len(points)
    for i, (lab, v) in enumerate(points):
        if v is not None:
            x, y = xy(i, float(v))
            body.append(
                f'<circle class="mark" cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{color}">'
                f"<title>{E(lab)}: {(f'{float(v):.1%}' if percent else f'{float(v):,.3f}')}</title></circle>"
            )
        if i % max(1, n // 6) == 0 or i == n - 1:
            x, _ = xy(i, 0)
            body.append(
                f'<text x="{x:.1f}" y="{height - 8}" text-anchor="middle" font-size="10">{E(lab)}</text>'
            )
    return body


def line_chart(
    points: list[tuple[str, float | None]],
    title: str,
    width=640,
    height=200,
    percent=False,
    color=PALETTE[0],
    x_label: str = "",
    y_label: str = "",
    incomplete_note: str = "",
) -> str:
    """A daily line. A value of None is a day without complete data: no point is drawn, the
    line breaks, and the day's column is shaded and marked as incomplete."""
    if not any(v is not None for _, v in points):
        return _empty(title, width)
    left, right, top, bottom = 62, 15, 12, 28
    vals = [None if v is None else float(v) for _, v in points]
    hi = max(v for v in vals if v is not None) or 1.0
    pw, ph = width - left - right, height - top - bottom
    n = len(points)

    def xy(i, v):
        x = left + (pw * i / (n - 1) if n > 1 else pw / 2)
        return x, top + ph - (v / hi) * ph

    body = [f'<line x1="{left}" y1="{top + ph}" x2="{left + pw}" y2="{top + ph}" stroke="#999"/>']
    step = pw / (n - 1) if n > 1 else pw
    missing = [i for i, v in enumerate(vals) if v is None]
    body += _incomplete_marks(points, missing, xy, step, top, ph, incomplete_note)
    body += _y_grid(hi, left, top, pw, ph, percent)
    body += _polylines(vals, xy, color)
    body += _points_and_ticks(points, xy, height, percent, color)
    return _svg(width, height, title, body, x_label, y_label)


def heatmap(
    rows: list[str],
    cols: list[str],
    cells: dict,
    title: str,
    width=640,
    x_label: str = "",
    y_label: str = "",
) -> str:
    """Grid of rows × cols; a cell value of None is shown as suppressed."""
    vals = [float(v) for v in cells.values() if v is not None]
    if not rows or not cols or not vals:
        return _empty(title, width)
    hi = max(vals) or 1.0
    label_w, head = 90, 24
    cw = (width - label_w) / len(cols)
    ch = 30
    body = []
    for j, c in enumerate(cols):
        body.append(
            f'<text x="{label_w + cw * j + cw / 2:.1f}" y="16" text-anchor="middle">{E(c)}</text>'
        )
    for i, r in enumerate(rows):
        y = head + i * ch
        body.append(f'<text x="{label_w - 6}" y="{y + 19}" text-anchor="end">{E(r)}</text>')
        for j, c in enumerate(cols):
            v = cells.get((r, c))
            x = label_w + cw * j
            if v is None:
                body.append(
                    f'<rect class="mark" x="{x + 1:.1f}" y="{y + 1}" width="{cw - 2:.1f}" height="{ch - 2}" '
                    f'fill="#eceef1"><title>{E(r)} · {E(c)}: suppressed (small cell)</title></rect>'
                    f'<text x="{x + cw / 2:.1f}" y="{y + 19}" text-anchor="middle" fill="#888">–</text>'
                )
                continue
            a = 0.12 + 0.88 * float(v) / hi
            body.append(
                f'<rect class="mark" x="{x + 1:.1f}" y="{y + 1}" width="{cw - 2:.1f}" height="{ch - 2}" '
                f'fill="#2f6db5" fill-opacity="{a:.2f}"><title>{E(r)} · {E(c)}: {float(v):,.2f}</title></rect>'
                f'<text x="{x + cw / 2:.1f}" y="{y + 19}" text-anchor="middle" '
                f'fill="{"#fff" if a > 0.55 else "#123"}">{float(v):,.0f}</text>'
            )
    return _svg(width, head + ch * len(rows) + 4, title, body, x_label, y_label)
