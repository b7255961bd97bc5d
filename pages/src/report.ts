/**
 * Uncaught errors in the page go to `POST /api/errors` (the admin's observability view),
 * a few per page load at most, so a loop of failures cannot flood the API.
 */

const MAX_REPORTS_PER_PAGE = 10;
const MAX_MESSAGE_CHARS = 2000;
const MAX_DETAIL_CHARS = 16000;
let sent = 0;

export function reportError(error: unknown, context = ""): void {
  if (sent >= MAX_REPORTS_PER_PAGE) return;
  sent += 1;
  const message = (error instanceof Error ? `${error.name}: ${error.message}` : String(error)) || "unknown error";
  const stack = error instanceof Error && error.stack ? error.stack : "";
  const detail = `${context}\npage: ${window.location.pathname}\n${stack}`.trim();
  void fetch("/api/errors", {
    method: "POST",
    credentials: "same-origin",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({
      source: "browser",
      message: message.slice(0, MAX_MESSAGE_CHARS),
      detail: detail.slice(0, MAX_DETAIL_CHARS),
    }),
    keepalive: true,
  }).catch(() => undefined);
}

export function reportUncaughtErrors(): void {
  window.addEventListener("error", (event) => reportError(event.error ?? event.message, "window.onerror"));
  window.addEventListener("unhandledrejection", (event) => reportError(event.reason, "unhandled rejection"));
}
