"""Server-rendered SVG charts (pygal): they work without JavaScript, on any phone, and the same
figure can be downloaded. Every chart is shown beside a table with the same numbers."""

import re
from collections.abc import Sequence
from datetime import datetime

import pygal
from django.utils.html import escape
from pygal.style import Style

STYLE = Style(
    background="white", plot_background="white", foreground="#1a1a1a", foreground_strong="#1a1a1a",
    foreground_subtle="#6b6b6b", colors=("#0b5394", "#b00020", "#1e6b2e", "#8a6100"),
    # Large on purpose: the SVG is scaled down to a phone's width, and patients read it there.
    font_family="system-ui, sans-serif", label_font_size=22, major_label_font_size=22,
    legend_font_size=22, value_font_size=20, title_font_size=24, stroke_width=4,
)


def time_series_svg(*, label: str, series: Sequence[tuple[str, Sequence[tuple[datetime, float]]]],
                    y_range: tuple[float, float] | None = None, y_labels: Sequence[float] | None = None) -> str:
    """An inline SVG line chart; ``label`` becomes its accessible name."""
    chart = pygal.DateTimeLine(
        js=[],  # no scripts from the internet; the chart is a plain picture
        disable_xml_declaration=True, style=STYLE, height=420, width=640, dots_size=7,
        show_legend=len(series) > 1, legend_at_bottom=True, x_label_rotation=0, truncate_label=-1,
        x_value_formatter=lambda d: d.strftime("%d.%m"), range=y_range, min_scale=3, max_scale=6,
        show_minor_x_labels=False, x_labels_major_count=4, show_minor_y_labels=False, margin=8,
    )
    if y_labels:
        chart.y_labels = list(y_labels)
    for name, points in series:
        chart.add(name, list(points))
    svg = chart.render(is_unicode=True)
    svg = re.sub(r"<script.*?</script>", "", svg, flags=re.S)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{escape(label)}" focusable="false" ', 1)
