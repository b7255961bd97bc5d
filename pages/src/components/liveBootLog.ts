import { useEffect, useState } from "react";

import { api } from "../api/client";
import type { BootLogEntry } from "../api/types";

/** Entries from the agent's live boot-log stream (docs/protocols/control-plane-api.md,
 * "Following the boot log"): open while `live` (the agent has the workspace), reconnect once
 * on an abnormal close, then leave the rest to polling. */
export function useLiveBootLog(workspaceId: string, live: boolean): BootLogEntry[] {
  const [entries, setEntries] = useState<BootLogEntry[]>([]);
  useEffect(() => {
    if (!live) return;
    let socket: WebSocket | null = null;
    let stopped = false;
    let retried = false;
    const open = async () => {
      let url: URL;
      try {
        const minted = await api.terminalToken(workspaceId);
        url = new URL(minted.boot_log_url);
        url.searchParams.set("token", minted.token);
      } catch {
        return; // polling carries on
      }
      if (stopped) return;
      socket = new WebSocket(url);
      socket.onmessage = (event) => {
        try {
          const entry = JSON.parse(String(event.data)) as BootLogEntry;
          setEntries((old) => [...old, entry]);
        } catch {
          // not an entry: ignore
        }
      };
      socket.onclose = (event) => {
        if (!stopped && event.code !== 1000 && !retried) {
          retried = true;
          void open();
        }
      };
    };
    void open();
    return () => {
      stopped = true;
      socket?.close(1000);
    };
  }, [workspaceId, live]);
  return entries;
}

const key = (entry: BootLogEntry) => `${entry.timestamp}|${entry.step}|${entry.status}|${entry.message}`;

/** The polled log (complete, eventually) plus live entries it does not hold yet. */
export function mergeBootLog(polled: BootLogEntry[], live: BootLogEntry[]): BootLogEntry[] {
  const seen = new Set(polled.map(key));
  return [...polled, ...live.filter((entry) => !seen.has(key(entry)))];
}
