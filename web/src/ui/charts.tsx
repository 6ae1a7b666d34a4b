// Two small SVG charts, drawn by hand: a charting library would triple the bundle for what
// is a polyline and some rectangles.

export type Series = { name: string; className: string; points: { x: number; y: number | null }[] };

type LineProps = {
  series: Series[];
  height?: number;
  yLabel: (y: number) => string;
  xLabel?: (x: number) => string;
  threshold?: { y: number; label: string };
  title: string;
};

const W = 600;

export function LineChart({ series, height = 180, yLabel, xLabel, threshold, title }: LineProps) {
  const xs = series.flatMap((s) => s.points.map((p) => p.x));
  const ys = series.flatMap((s) => s.points.flatMap((p) => (p.y == null ? [] : [p.y])));
  if (threshold) ys.push(threshold.y);
  if (xs.length === 0) return <p class="muted chart-empty">—</p>;
  const x0 = Math.min(...xs);
  const x1 = Math.max(...xs, x0 + 1);
  const y1 = Math.max(...ys, 0) * 1.15 || 1;
  const pad = { l: 56, r: 10, t: 10, b: 22 };
  const sx = (x: number) => pad.l + ((x - x0) / (x1 - x0)) * (W - pad.l - pad.r);
  const sy = (y: number) => height - pad.b - (y / y1) * (height - pad.t - pad.b);
  const ticks = [0, y1 / 2, y1];
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${height}`} role="img" aria-label={title}>
        {ticks.map((y) => (
          <g key={y}>
            <line class="grid" x1={pad.l} x2={W - pad.r} y1={sy(y)} y2={sy(y)} />
            <text class="axis" x={pad.l - 6} y={sy(y) + 4} text-anchor="end">
              {yLabel(y)}
            </text>
          </g>
        ))}
        {xLabel && (
          <>
            <text class="axis" x={pad.l} y={height - 4}>{xLabel(x0)}</text>
            <text class="axis" x={W - pad.r} y={height - 4} text-anchor="end">{xLabel(x1)}</text>
          </>
        )}
        {threshold && (
          <line class="threshold" x1={pad.l} x2={W - pad.r} y1={sy(threshold.y)} y2={sy(threshold.y)}>
            <title>{threshold.label}</title>
          </line>
        )}
        {series.map((s) => {
          const pts = s.points.filter((p) => p.y != null);
          const d = pts.map((p, i) => `${i ? "L" : "M"}${sx(p.x).toFixed(1)},${sy(p.y!).toFixed(1)}`).join("");
          return (
            <g key={s.name} class={s.className}>
              <path d={d} fill="none" />
              {pts.map((p) => (
                <circle key={p.x} cx={sx(p.x)} cy={sy(p.y!)} r={2.5}>
                  <title>{`${s.name}: ${yLabel(p.y!)}`}</title>
                </circle>
              ))}
            </g>
          );
        })}
      </svg>
      <figcaption>
        {series.map((s) => (
          <span key={s.name} class={`legend ${s.className}`}>{s.name}</span>
        ))}
      </figcaption>
    </figure>
  );
}

export type Bar = { label: string; segments: { value: number; className: string; name: string }[] };

export function BarChart({ bars, height = 150, title }: { bars: Bar[]; height?: number; title: string }) {
  const W = 1100; // wide like the page, so labels keep their size
  const max = Math.max(1, ...bars.map((b) => b.segments.reduce((a, s) => a + s.value, 0)));
  const step = W / Math.max(bars.length, 1);
  const top = 8;
  const bottom = 18;
  const scale = (v: number) => (v / max) * (height - top - bottom);
  return (
    <figure class="chart">
      <svg viewBox={`0 0 ${W} ${height}`} role="img" aria-label={title}>
        {bars.map((bar, i) => {
          let y = height - bottom;
          const total = bar.segments.reduce((a, s) => a + s.value, 0);
          return (
            <g key={bar.label}>
              <title>{`${bar.label}: ${bar.segments.map((s) => `${s.name} ${s.value}`).join(", ")}`}</title>
              {bar.segments.map((s) => {
                const h = scale(s.value);
                y -= h;
                return <rect key={s.name} class={s.className} x={i * step + 2} y={y} width={step - 4} height={h} />;
              })}
              {total > 0 && (
                <text class="axis" x={i * step + step / 2} y={y - 2} text-anchor="middle">{total}</text>
              )}
              {(i === 0 || i === bars.length - 1 || i % 7 === 0) && (
                <text class="axis" x={i * step + step / 2} y={height - 4} text-anchor="middle">
                  {bar.label.slice(5)}
                </text>
              )}
            </g>
          );
        })}
      </svg>
      <figcaption>
        {(bars[0]?.segments ?? []).map((seg) => (
          <span key={seg.name} class={`legend ${seg.className}`}>{seg.name}</span>
        ))}
      </figcaption>
    </figure>
  );
}
