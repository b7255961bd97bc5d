import { useCallback, useEffect, useRef, useState } from "react";

export type Loadable<T> =
  | { state: "loading"; data?: T }
  | { state: "ready"; data: T }
  | { state: "error"; error: unknown; data?: T };

/**
 * Load `fetcher()` now and whenever `reload()` is called; with `everyMs`, again on that
 * interval (a failed poll keeps the last data and shows the error beside it).
 */
export function useLoad<T>(
  fetcher: () => Promise<T>,
  deps: unknown[],
  everyMs: number | null = null,
): Loadable<T> & { reload: () => Promise<void> } {
  const [result, setResult] = useState<Loadable<T>>({ state: "loading" });
  const generation = useRef(0);
  const fetcherRef = useRef(fetcher);
  fetcherRef.current = fetcher;

  const reload = useCallback(async () => {
    const mine = generation.current;
    try {
      const data = await fetcherRef.current();
      if (generation.current === mine) setResult({ state: "ready", data });
    } catch (error) {
      if (generation.current === mine) setResult((old) => ({ state: "error", error, data: old.data }));
    }
  }, []);

  useEffect(() => {
    generation.current += 1;
    setResult({ state: "loading" });
    void reload();
  }, deps);

  useEffect(() => {
    if (everyMs === null) return;
    const timer = setInterval(() => void reload(), everyMs);
    return () => clearInterval(timer);
  }, [everyMs, reload]);

  return { ...result, reload };
}

/** Set the document title for the current screen. */
export function useTitle(title: string): void {
  useEffect(() => {
    document.title = title ? `${title} · SAM` : "SAM";
  }, [title]);
}
