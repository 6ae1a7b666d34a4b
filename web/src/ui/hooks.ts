import { useEffect, useRef, useState } from "preact/hooks";

/** Call `fn` every `ms` while the page is visible (a hidden tab polls nothing). */
export function useInterval(fn: () => void, ms: number): void {
  const saved = useRef(fn);
  saved.current = fn;
  useEffect(() => {
    const id = setInterval(() => {
      if (document.visibilityState === "visible") saved.current();
    }, ms);
    return () => clearInterval(id);
  }, [ms]);
}

/** Re-render every `ms` so relative times ("3m ago") stay true. */
export function useNow(ms = 5000): number {
  const [now, setNow] = useState(Date.now());
  useInterval(() => setNow(Date.now()), ms);
  return now;
}
