"""Time and peak memory against rows, from the harness's result files, as a plain SVG
(no plotting library needed):

    uv run --frozen python -m bench.plot [--out docs/benchmarks.svg] [RESULT.json ...]

Default inputs: every <root>/results/*.json. x = raw order lines of the dataset (log
scale), one line per stage; left panel median wall seconds, right panel median peak GB.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from bench.measure import ROOT

STAGES = [  # stage, colour, label
    ("settle", "#d62728", "settle end to end (Airflow+dbt+GX+publish)"),
    ("build", "#1f77b4", "settlement dbt build"),
    ("floor", "#2ca02c", "floor (same SQL, one DuckDB connection)"),
    ("spark_build", "#9467bd", "dbt build on Spark local mode"),
    ("ingest_month", "#ff7f0e", "ingest the month"),
]


def points(results: list[dict]) -> dict[str, list[tuple[float, float, float]]]:
    out: dict[str, list] = {s: [] for s, _, _ in STAGES}
    for r in results:
        rows = ((r.get("data") or {}).get("raw_rows") or {}).get("orders")
        summ = r.get("summary") or {}
        if not rows:
            continue
        for s, _, _ in STAGES:
            v = summ.get(s)
            if isinstance(v, dict) and v.get("wall_s") is not None:
                out[s].append((rows, v["wall_s"], (v.get("peak_rss_mb") or 0) / 1024))
    for s in out:
        out[s].sort()
    return out


def svg(results: list[dict], title: str) -> str:
    pts = points(results)
    W, H, pad_l, pad_b, pad_t, gap = 1000, 470, 60, 60, 50, 80
    pw = (W - 2 * pad_l - gap) / 2
    ph = H - pad_t - pad_b - 90
    xs = [p[0] for v in pts.values() for p in v] or [1, 10]
    x0, x1 = math.floor(math.log10(min(xs))), math.ceil(math.log10(max(xs)) + 0.01)
    el = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" font-size="12">',
        '<rect width="100%" height="100%" fill="white"/>',
        f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="15">{title}</text>',
    ]
    for panel, (idx, ylabel) in enumerate(
        [(1, "median wall time (s)"), (2, "median peak memory of the process tree (GB)")]
    ):
        ox = pad_l + panel * (pw + gap)
        oy = pad_t + ph
        ys = [p[idx] for v in pts.values() for p in v] or [1]
        ymax = max(ys) * 1.1 or 1
        step = 10 ** math.floor(math.log10(ymax)) if ymax > 0 else 1
        if ymax / step < 3:
            step /= 2
        el.append(
            f'<rect x="{ox}" y="{pad_t}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>'
        )
        y = 0.0
        while y <= ymax:
            py = oy - y / ymax * ph
            el.append(f'<line x1="{ox}" y1="{py:.1f}" x2="{ox + pw}" y2="{py:.1f}" stroke="#eee"/>')
            el.append(f'<text x="{ox - 6}" y="{py + 4:.1f}" text-anchor="end">{y:g}</text>')
            y += step
        for e in range(x0, x1 + 1):
            px = ox + (e - x0) / max(x1 - x0, 1) * pw
            el.append(f'<line x1="{px:.1f}" y1="{pad_t}" x2="{px:.1f}" y2="{oy}" stroke="#eee"/>')
            el.append(f'<text x="{px:.1f}" y="{oy + 16}" text-anchor="middle">{10**e:,.0f}</text>')
        el.append(
            f'<text x="{ox + pw / 2}" y="{oy + 36}" text-anchor="middle">raw order lines (log scale)</text>'
        )
        el.append(
            f'<text x="{ox - 45}" y="{pad_t + ph / 2}" text-anchor="middle" '
            f'transform="rotate(-90 {ox - 45} {pad_t + ph / 2})">{ylabel}</text>'
        )
        for s, colour, _ in STAGES:
            v = pts[s]
            coords = [
                (ox + (math.log10(p[0]) - x0) / max(x1 - x0, 1) * pw, oy - p[idx] / ymax * ph)
                for p in v
            ]
            if len(coords) > 1:
                el.append(
                    '<polyline fill="none" stroke="{}" stroke-width="2" points="{}"/>'.format(
                        colour, " ".join(f"{x:.1f},{y:.1f}" for x, y in coords)
                    )
                )
            for (x, y), p in zip(coords, v):
                el.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="4" fill="{colour}"/>')
                el.append(
                    f'<text x="{x + 6:.1f}" y="{y - 6:.1f}" font-size="10" fill="{colour}">{p[idx]:.3g}</text>'
                )
    ly = H - 70
    for i, (_s, colour, label) in enumerate(STAGES):
        lx = pad_l + (i % 3) * 310
        yy = ly + (i // 3) * 20
        el.append(f'<rect x="{lx}" y="{yy - 9}" width="14" height="10" fill="{colour}"/>')
        el.append(f'<text x="{lx + 20}" y="{yy}">{label}</text>')
    el.append("</svg>")
    return "\n".join(el) + "\n"


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plot")
    p.add_argument("results", nargs="*", type=Path)
    p.add_argument("--root", type=Path, default=ROOT / "var" / "bench")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.svg")
    p.add_argument(
        "--title", default="Supernova settlement: time and memory against rows (2 cores, 24 GB)"
    )
    a = p.parse_args(argv)
    files = a.results or sorted((a.root / "results").glob("*.json"))
    results = [json.loads(f.read_text()) for f in files]
    a.out.parent.mkdir(parents=True, exist_ok=True)
    a.out.write_text(svg(results, a.title))
    print(f"wrote {a.out} from {len(results)} result file(s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
