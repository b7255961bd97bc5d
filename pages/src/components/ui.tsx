import { type ReactNode, useEffect, useRef, useState } from "react";

import { ApiError, messageOf } from "../api/client";

/** An error from a request: the API's message, and what to do next when that is known. */
export function ErrorNote({ error, onRetry }: { error: unknown; onRetry?: () => void }) {
  const code = error instanceof ApiError ? error.code : null;
  return (
    <div className="note note-error" role="alert">
      <p>{messageOf(error)}</p>
      {code && <p className="note-code">Error code: {code}</p>}
      {onRetry && (
        <button type="button" className="button button-small" onClick={onRetry}>
          Try again
        </button>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p className="loading" role="status">
      <span className="spinner" aria-hidden="true" /> Loading {what}…
    </p>
  );
}

const STATUS_TONES: Record<string, string> = {
  running: "good",
  healthy: "good",
  idle: "good",
  succeeded: "good",
  completed: "good",
  queued: "busy",
  creating: "busy",
  pending: "busy",
  started: "busy",
  stopping: "busy",
  starting: "busy",
  prompting: "busy",
  restarting: "busy",
  stale: "warn",
  stopped: "quiet",
  error: "bad",
  failed: "bad",
  cancelled: "quiet",
  crashed: "bad",
  unhealthy: "bad",
};

export function StatusBadge({ status, label }: { status: string; label?: string }) {
  const tone = STATUS_TONES[status] ?? "quiet";
  return (
    <span className={`badge badge-${tone}`} data-status={status}>
      {tone === "busy" && <span className="spinner spinner-small" aria-hidden="true" />}
      {label ?? status}
    </span>
  );
}

/** A destructive action that asks once more in place (no modal dialog). */
export function ConfirmButton({
  label,
  confirmLabel,
  onConfirm,
  disabled,
}: {
  label: string;
  confirmLabel: string;
  onConfirm: () => Promise<void> | void;
  disabled?: boolean;
}) {
  const [asking, setAsking] = useState(false);
  const [busy, setBusy] = useState(false);
  const confirmRef = useRef<HTMLButtonElement>(null);
  useEffect(() => {
    if (asking) confirmRef.current?.focus();
  }, [asking]);
  if (!asking) {
    return (
      <button type="button" className="button button-danger-quiet" disabled={disabled} onClick={() => setAsking(true)}>
        {label}
      </button>
    );
  }
  return (
    <span className="confirm" role="group" aria-label={confirmLabel}>
      <button
        ref={confirmRef}
        type="button"
        className="button button-danger"
        disabled={busy}
        onClick={async () => {
          setBusy(true);
          try {
            await onConfirm();
          } finally {
            setBusy(false);
            setAsking(false);
          }
        }}
      >
        {busy ? "Working…" : confirmLabel}
      </button>
      <button type="button" className="button button-quiet" disabled={busy} onClick={() => setAsking(false)}>
        Cancel
      </button>
    </span>
  );
}

export function PageHeader({ title, actions, children }: { title: string; actions?: ReactNode; children?: ReactNode }) {
  return (
    <header className="page-header">
      <div className="page-header-text">
        <h1 tabIndex={-1} id="page-title">
          {title}
        </h1>
        {children}
      </div>
      {actions && <div className="page-header-actions">{actions}</div>}
    </header>
  );
}

export function EmptyState({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <h2>{title}</h2>
      {children}
    </div>
  );
}

/** "3 minutes ago", with the exact time on hover and for screen readers' title. */
export function When({ iso }: { iso: string | null | undefined }) {
  if (!iso) return <span className="muted">never</span>;
  const date = new Date(iso.includes("T") || iso.endsWith("Z") ? iso : iso.replace(" ", "T") + "Z");
  if (Number.isNaN(date.getTime())) return <span>{iso}</span>;
  return (
    <time dateTime={date.toISOString()} title={date.toLocaleString()}>
      {relative(date)}
    </time>
  );
}

const UNITS: [Intl.RelativeTimeFormatUnit, number][] = [
  ["day", 86_400],
  ["hour", 3_600],
  ["minute", 60],
  ["second", 1],
];

function relative(date: Date): string {
  const seconds = Math.round((date.getTime() - Date.now()) / 1000);
  if (Math.abs(seconds) < 10) return "just now";
  const format = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });
  for (const [unit, size] of UNITS) {
    if (Math.abs(seconds) >= size) return format.format(Math.round(seconds / size), unit);
  }
  return "just now";
}

const PROVIDER_NAMES: Record<string, string> = { local: "Local node", hetzner: "Hetzner" };

/** A provider as people write it ("Hetzner", not the API's "hetzner"). */
export function providerName(provider: string): string {
  return PROVIDER_NAMES[provider] ?? provider;
}
