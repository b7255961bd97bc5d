import { useEffect, useRef } from "react";

import type { BootLogEntry } from "../api/types";

const ICONS: Record<string, string> = { started: "…", succeeded: "✓", failed: "✕", done: "·" };

/** The steps run one after another, so a step that started and was followed by any later
 * entry is no longer in progress, and once the workspace has settled (`live` false: ready,
 * failed or stopped) nothing is: only what is still running shows as running. */
export function displayStatus(entries: BootLogEntry[], index: number, live: boolean): string {
  const entry = entries[index];
  if (entry.status !== "started") return entry.status;
  return live && index === entries.length - 1 ? "started" : "done";
}

/** A workspace's boot log, newest at the bottom; new entries are announced politely.
 * `follow`: the workspace is being created (scroll to the newest; the last step may run). */
export function BootLogView({ entries, dropped, follow }: { entries: BootLogEntry[]; dropped?: number; follow: boolean }) {
  const endRef = useRef<HTMLLIElement>(null);
  useEffect(() => {
    if (follow) endRef.current?.scrollIntoView({ block: "nearest" });
  }, [entries.length, follow]);
  if (entries.length === 0) {
    return <p className="muted">Waiting for the first step…</p>;
  }
  return (
    <ol className="boot-log" aria-live="polite" aria-label="Boot log" data-testid="boot-log">
      {dropped ? <li className="muted small">{dropped} earlier entries were dropped.</li> : null}
      {entries.map((entry, index) => {
        const status = displayStatus(entries, index, follow);
        return (
          <li key={`${index}-${entry.timestamp}`} className={`boot-entry boot-${status}`}>
            <span className="boot-icon" aria-label={status === "done" ? "done" : status}>
              {ICONS[status] ?? "·"}
            </span>
            <span className="boot-step">{entry.step}</span>
            <span className="boot-message">
              {entry.message}
              {entry.detail && (
                <details>
                  <summary>Details</summary>
                  <pre>{entry.detail}</pre>
                </details>
              )}
            </span>
            <time className="boot-time muted" dateTime={entry.timestamp}>
              {formatTime(entry.timestamp)}
            </time>
          </li>
        );
      })}
      <li ref={endRef} aria-hidden="true" className="boot-end" />
    </ol>
  );
}

function formatTime(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : date.toLocaleTimeString();
}
