import { useEffect, useRef } from "react";

import type { BootLogEntry } from "../api/types";

const ICONS: Record<string, string> = { started: "…", succeeded: "✓", failed: "✕", done: "·" };

/** A step that started and was followed by later entries of the same step is no longer in
 * progress: it shows as done, so only what is still running shows as running. */
function displayStatus(entries: BootLogEntry[], index: number): string {
  const entry = entries[index];
  if (entry.status !== "started") return entry.status;
  const later = entries.slice(index + 1);
  return later.some((other) => other.step === entry.step) ? "done" : "started";
}

/** A workspace's boot log, newest at the bottom; new entries are announced politely. */
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
        const status = displayStatus(entries, index);
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
