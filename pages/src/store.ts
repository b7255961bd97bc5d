/**
 * A page-side store of live state (an agent session, a project chat): React reads it with
 * useSyncExternalStore, frames change it with `update`. Listeners hear at most once per
 * animation frame, however many frames arrived: a replay of thousands of updates after a
 * reload renders a few times, not thousands.
 */

import { ApiError } from "./api/client";

/** What went wrong, as the page shows it: the API's code and message. */
export interface Problem {
  code: string;
  message: string;
}

export function problemOf(error: unknown): Problem {
  if (error instanceof ApiError) return { code: error.code, message: error.message };
  return { code: "error", message: error instanceof Error ? error.message : String(error) };
}

export class LiveStore<S extends object> {
  protected disposed = false;
  private listeners = new Set<() => void>();
  private renderRequest = 0;

  constructor(protected current: S) {}

  subscribe = (listener: () => void): (() => void) => {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  };

  snapshot = (): S => this.current;

  dispose(): void {
    this.disposed = true;
    cancelAnimationFrame(this.renderRequest);
    this.listeners.clear();
  }

  protected update(change: Partial<S>): void {
    if (this.disposed) return;
    this.current = { ...this.current, ...change };
    if (this.renderRequest === 0) {
      this.renderRequest = requestAnimationFrame(() => {
        this.renderRequest = 0;
        for (const listener of this.listeners) listener();
      });
    }
  }
}
