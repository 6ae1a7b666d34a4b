// A list that renders only the rows in view, so a log of 50,000 lines scrolls as smoothly as
// one of 50. Rows have one fixed height; long lines are cut with an ellipsis and shown whole
// in the row's title.

import type { ComponentChildren } from "preact";
import { useLayoutEffect, useRef, useState } from "preact/hooks";

type Props<T> = {
  items: readonly T[];
  rowHeight: number;
  /** Bumped by the owner whenever `items` changed in place. */
  version: number;
  follow: boolean;
  onUserScroll?: (atBottom: boolean) => void;
  render: (item: T, index: number) => ComponentChildren;
  className?: string;
  label: string;
};

const OVERSCAN = 20;

export function VirtualList<T>({ items, rowHeight, version, follow, onUserScroll, render, className, label }: Props<T>) {
  const ref = useRef<HTMLDivElement>(null);
  const [scrollTop, setScrollTop] = useState(0);
  const [viewport, setViewport] = useState(600);
  const programmatic = useRef(false);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el) return;
    const observer = new ResizeObserver(() => setViewport(el.clientHeight));
    observer.observe(el);
    setViewport(el.clientHeight);
    return () => observer.disconnect();
  }, []);

  useLayoutEffect(() => {
    const el = ref.current;
    if (!el || !follow) return;
    const bottom = Math.max(0, items.length * rowHeight - el.clientHeight);
    if (Math.abs(el.scrollTop - bottom) > 1) {
      programmatic.current = true;
      el.scrollTop = bottom;
      setScrollTop(bottom);
    }
  }, [version, follow, items.length, rowHeight]);

  const first = Math.max(0, Math.floor(scrollTop / rowHeight) - OVERSCAN);
  const last = Math.min(items.length, Math.ceil((scrollTop + viewport) / rowHeight) + OVERSCAN);
  const rows: ComponentChildren[] = [];
  for (let i = first; i < last; i++) {
    rows.push(
      <div class="vrow" key={i} style={{ top: `${i * rowHeight}px`, height: `${rowHeight}px` }}>
        {render(items[i] as T, i)}
      </div>,
    );
  }
  return (
    <div
      ref={ref}
      class={`vlist ${className ?? ""}`}
      role="log"
      aria-label={label}
      aria-live="off"
      tabIndex={0}
      onScroll={(e) => {
        const el = e.currentTarget;
        setScrollTop(el.scrollTop);
        if (programmatic.current) {
          programmatic.current = false;
          return;
        }
        onUserScroll?.(el.scrollTop + el.clientHeight >= el.scrollHeight - rowHeight);
      }}
    >
      <div class="vspacer" style={{ height: `${items.length * rowHeight}px` }}>
        {rows}
      </div>
    </div>
  );
}
