/**
 * A project's viewer WebSocket that comes back: on a drop it reconnects with backoff, each
 * time to the address `url()` gives then (a chat's carries `after=` the last seq it has, so
 * the server sends exactly what was missed). Closed on purpose, or by the server for good
 * (the chat or project was deleted), it stays closed; too far behind, its owner catches up
 * over HTTP and opens it again.
 */

/** The server's close codes (docs/protocols/project-chat.md). */
export const CLOSE_GONE = 4404; // the chat or the project was deleted
export const CLOSE_TOO_FAR_BEHIND = 4409; // more missed than a replay sends: page over HTTP

import { reconnectDelayMs } from "../terminal/backoff";
import { ProtocolError } from "../jsonFrame";
import { type ViewerFrame, decodeViewerFrame } from "./protocol";

export type ViewerStatus = "connecting" | "open" | "reconnecting" | "closed";

export interface ViewerHandlers {
  frame: (frame: ViewerFrame) => void;
  status: (status: ViewerStatus) => void;
  /** A frame this page does not understand (the connection carries on). */
  bad: (error: ProtocolError) => void;
  /** Too far behind: catch up, then call open() again. */
  behind?: () => void;
}

export class ViewerSocket {
  private socket: WebSocket | null = null;
  private attempt = 0;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private closed = false;

  constructor(
    private readonly url: () => string,
    private readonly on: ViewerHandlers,
  ) {}

  open(): void {
    if (this.closed) return;
    this.on.status(this.attempt === 0 ? "connecting" : "reconnecting");
    const socket = new WebSocket(this.url());
    this.socket = socket;
    socket.onopen = () => {
      this.attempt = 0;
      this.on.status("open");
    };
    socket.onmessage = (event: MessageEvent) => {
      if (typeof event.data !== "string") return;
      try {
        this.on.frame(decodeViewerFrame(event.data));
      } catch (error) {
        if (!(error instanceof ProtocolError)) throw error;
        this.on.bad(error);
      }
    };
    socket.onclose = (event: CloseEvent) => {
      if (this.socket !== socket || this.closed) return;
      this.socket = null;
      if (event.code === CLOSE_GONE) {
        this.close();
        return;
      }
      this.on.status("reconnecting");
      if (event.code === CLOSE_TOO_FAR_BEHIND && this.on.behind) {
        this.on.behind();
        return;
      }
      this.timer = setTimeout(() => this.open(), reconnectDelayMs(this.attempt++));
    };
  }

  /** Close as a network failure would: it reconnects (the tests' way to drop it). */
  drop(): void {
    this.socket?.close();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    const socket = this.socket;
    this.socket = null;
    socket?.close();
    this.on.status("closed");
  }
}
