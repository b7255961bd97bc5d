/**
 * Reconnect delays: exponential backoff with jitter, so that many browsers that lost the
 * same node do not come back in step. Attempt 0 waits about BASE_DELAY_MS, each further
 * attempt doubles it up to MAX_DELAY_MS; the delay is drawn from [½·d, d] ("equal jitter"),
 * so it never collapses to zero and never exceeds the cap.
 */

export const BASE_DELAY_MS = 500;
export const MAX_DELAY_MS = 15_000;

export function reconnectDelayMs(attempt: number, random: () => number = Math.random): number {
  const ceiling = Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** Math.max(0, attempt));
  return Math.round(ceiling / 2 + random() * (ceiling / 2));
}
