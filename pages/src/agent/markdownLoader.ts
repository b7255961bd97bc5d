/**
 * The markdown renderer, loaded apart from the app's first script so that script compiles
 * sooner: `loadMarkdown()` starts it as the page starts (beside its first requests), and
 * `useMarkdown()` gives the renderer once it is in, null until then (the text shows plain
 * meanwhile, and is rendered as markdown the moment it arrives).
 */

import { type ComponentType, useEffect, useSyncExternalStore } from "react";

type Renderer = ComponentType<{ text: string }>;

let renderer: Renderer | null = null;
let loading: Promise<void> | null = null;
const listeners = new Set<() => void>();

export function loadMarkdown(): Promise<void> {
  loading ??= import("./Markdown").then(
    (module) => {
      renderer = module.MarkdownText;
      for (const listener of listeners) listener();
    },
    () => {
      loading = null; // the text stays plain and readable; the next message tries again
    },
  );
  return loading;
}

function subscribe(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}

/** The markdown renderer, or null while it loads. */
export function useMarkdown(): Renderer | null {
  useEffect(() => {
    void loadMarkdown();
  }, []);
  return useSyncExternalStore(subscribe, () => renderer, () => renderer);
}
