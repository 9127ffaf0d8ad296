/** A small SVG bar chart: one bar per point, its value in a <title> tooltip and in a table for screen readers. */
import { html } from "htm/preact";

export interface Bar {
  label: string;
  value: number;
  detail?: string;
}

export function BarChart(props: { bars: Bar[]; title: string; unit?: string }) {
  const { bars, title } = props;
  const max = Math.max(1, ...bars.map((b) => b.value));
  const width = 640;
  const height = 120;
  const step = bars.length ? width / bars.length : width;
  const barWidth = Math.max(1, step * 0.8);
  return html`<figure class="chart">
    <figcaption>${title}</figcaption>
    <svg
      viewBox="0 0 ${width} ${height + 16}"
      role="img"
      aria-label=${`${title}: ${bars.reduce((n, b) => n + b.value, 0)} in total, at most ${max}${props.unit ?? ""} per bar`}
    >
      <line x1="0" y1=${height} x2=${width} y2=${height} class="axis" />
      ${bars.map((b, i) => {
        const h = (b.value / max) * (height - 4);
        return html`<rect x=${i * step} y=${height - h} width=${barWidth} height=${h} class="bar">
          <title>
            ${b.label}: ${b.value}${props.unit ?? ""}${b.detail ? ` (${b.detail})` : ""}
          </title>
        </rect>`;
      })}
      <text x="0" y=${height + 13} class="tick">${bars[0]?.label ?? ""}</text>
      <text x=${width} y=${height + 13} text-anchor="end" class="tick">
        ${bars[bars.length - 1]?.label ?? ""}
      </text>
      <text x="2" y="10" class="tick">${max}${props.unit ?? ""}</text>
    </svg>
  </figure>`;
}
