"""Small inline SVG charts for `avbench report`: hand-made, so the page needs no plotting
library, no script and no network to show them. Every function returns one `<svg>` element."""

from __future__ import annotations

from html import escape

WIDTH = 760
BAR = 22  # height of one bar row
LABEL = 340  # width of the label column
REAL, CONTROL, BEST = "#3b6fb6", "#b0b0b0", "#d9822b"


def _svg(height: int, body: list[str], title: str, width: int = WIDTH) -> str:
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}"><title>{escape(title)}</title>{"".join(body)}</svg>'
    )


def bar_chart(bars: list[dict], *, title: str, maximum: float = 1.0) -> str:
    """Horizontal bars: each {label, value, ci95: [low, high] | None, control: bool}; controls in grey."""
    plot = WIDTH - LABEL - 60
    body = []
    for index, bar in enumerate(bars):
        y = 10 + index * BAR
        scale = plot / maximum if maximum else 0.0
        width = max(0.0, bar["value"]) * scale
        colour = CONTROL if bar.get("control") else REAL
        body.append(
            f'<text x="{LABEL - 6}" y="{y + 15}" text-anchor="end" font-size="12">{escape(bar["label"])}</text>'
        )
        body.append(f'<rect x="{LABEL}" y="{y + 3}" width="{width:.1f}" height="{BAR - 6}" fill="{colour}"/>')
        if bar.get("ci95"):
            low, high = (LABEL + max(0.0, v) * scale for v in bar["ci95"])
            mid = y + BAR / 2
            body.append(
                f'<path d="M{low:.1f},{mid}H{high:.1f}M{low:.1f},{mid - 5}V{mid + 5}M{high:.1f},{mid - 5}V{mid + 5}" '
                'stroke="#222" stroke-width="1.5" fill="none" class="ci"/>'
            )
        body.append(f'<text x="{LABEL + width + 4:.1f}" y="{y + 15}" font-size="11">{bar["value"]:.3f}</text>')
    return _svg(20 + len(bars) * BAR, body, title)


def history_chart(values: list[tuple[int, float]], *, title: str) -> str:
    """Each trial's objective (dots) and the best so far (a step line), by trial number."""
    height, left, bottom, top = 220, 50, 30, 12
    if not values:
        return _svg(40, ['<text x="10" y="25" font-size="12">no completed trial</text>'], title)
    numbers = [n for n, _ in values]
    scores = [v for _, v in values]
    low, high = min(scores), max(scores)
    span = (high - low) or 1.0
    first, last = min(numbers), max(numbers)

    def x(n: int) -> float:
        return left + (n - first) / ((last - first) or 1) * (WIDTH - left - 20)

    def y(v: float) -> float:
        return top + (high - v) / span * (height - top - bottom)

    body = [
        f'<line x1="{left}" y1="{height - bottom}" x2="{WIDTH - 10}" y2="{height - bottom}" stroke="#888"/>',
        f'<text x="{left}" y="{height - 8}" font-size="11">trial {first}</text>',
        f'<text x="{WIDTH - 10}" y="{height - 8}" font-size="11" text-anchor="end">trial {last}</text>',
        f'<text x="4" y="{y(high) + 4:.1f}" font-size="11">{high:.3f}</text>',
        f'<text x="4" y="{y(low) + 4:.1f}" font-size="11">{low:.3f}</text>',
    ]
    best, path = float("-inf"), []
    for number, value in values:
        body.append(f'<circle cx="{x(number):.1f}" cy="{y(value):.1f}" r="3" fill="{REAL}"/>')
        best = max(best, value)
        path.append(f"{'M' if not path else 'L'}{x(number):.1f},{y(best):.1f}")
    body.append(f'<path d="{" ".join(path)}" stroke="{BEST}" stroke-width="2" fill="none"/>')
    return _svg(height, body, title)


def confusion_chart(matrix: list[list[int]], classes: list[str], *, title: str) -> str:
    """Rows are true classes, columns predictions; each cell shaded by its share of the row."""
    cell, left, top = 34, 120, 70
    size = len(matrix)
    body = []
    for column, name in enumerate(classes):
        cx = left + column * cell + cell / 2
        body.append(
            f'<text x="{cx}" y="{top - 6}" font-size="11" transform="rotate(-45 {cx} {top - 6})">{escape(name)}</text>'
        )
    for row, counts in enumerate(matrix):
        total = sum(counts) or 1
        y = top + row * cell
        name = escape(classes[row])
        body.append(f'<text x="{left - 6}" y="{y + cell / 2 + 4}" font-size="11" text-anchor="end">{name}</text>')
        for column, count in enumerate(counts):
            share = count / total
            shade = int(255 - 200 * share)
            body.append(
                f'<rect x="{left + column * cell}" y="{y}" width="{cell}" height="{cell}" '
                f'fill="rgb({shade},{shade},255)" stroke="#fff"/>'
            )
            ink = "#fff" if share > 0.6 else "#000"
            body.append(
                f'<text x="{left + column * cell + cell / 2}" y="{y + cell / 2 + 4}" font-size="11" '
                f'text-anchor="middle" fill="{ink}">{count}</text>'
            )
    body.append(f'<text x="{left}" y="12" font-size="11" fill="#666">predicted →</text>')
    width = max(WIDTH // 2, left + size * cell + 10)
    return _svg(top + size * cell + 10, body, title, width=width)
