/**
 * A project's viewer WebSocket that comes back: on a drop it reconnects with backoff, each
 * time to the address `url()` gives then (a chat's carries `after=` the last seq it has, so
 * the server sends exactly what was missed). Closed on purpose, it stays closed.
 */

import { reconnectDelayMs } from "../terminal/backoff";
import { ProtocolError } from "../jsonFrame";
import { type ViewerFrame, decodeViewerFrame } from "./protocol";

export type ViewerStatus = "connecting" | "open" | "reconnecting" | "closed";

export interface ViewerHandlers {
  frame: (frame: ViewerFrame) => void;
  status: (status: ViewerStatus) => void;
  /** A frame this page does not understand (the connection carries on). */
  bad: (error: ProtocolError) => void;
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
    socket.onclose = () => {
      if (this.socket !== socket || this.closed) return;
      this.socket = null;
      this.on.status("reconnecting");
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
