/**
 * A workspace page's terminals: one TerminalClient (the WebSocket) plus one xterm.js
 * screen per tab. React renders the tab bar from `snapshot()` and hands each tab's pane
 * element to `mount()`; everything that touches xterm lives here.
 */

import { FitAddon } from "@xterm/addon-fit";
import { Terminal } from "@xterm/xterm";

import { ApiError, api } from "../api/client";
import {
  type ConnectionStatus,
  ConnectRefused,
  type Tab,
  type TabExit,
  TerminalClient,
} from "./client";

export interface TerminalsSnapshot {
  status: ConnectionStatus;
  tabs: Tab[];
  active: string | null;
  retryInMs: number | null;
  problem: { message: string; code: string } | null;
}

interface Screen {
  terminal: Terminal;
  fit: FitAddon;
  element: HTMLElement | null;
}

const DEFAULT_SIZE = { cols: 80, rows: 24 };
const THEME = {
  background: "#0f1420",
  foreground: "#d8dee9",
  cursor: "#f0f4fc",
  selectionBackground: "#3b4a6b",
  black: "#1b2130",
  brightBlack: "#5c6678",
};

function exitText(exit: TabExit): string {
  if (exit.reason === "gone") return "This shell has ended (SAM or the workspace restarted).";
  if (exit.reason === "workspace_stopped") return "The workspace was stopped, so this shell ended.";
  if (exit.reason === "agent_stopping") return "This shell ended: SAM on the node was stopped.";
  if (exit.reason === "killed") return "The agent ended this command.";
  if (exit.exitCode === 0) return "The shell exited.";
  if (exit.exitCode !== null) return `The shell exited with an error (code ${exit.exitCode}).`;
  if (exit.signal !== null) return "The shell was stopped.";
  return "The shell has ended.";
}

/** Whether a new shell can take the tab's place (its shell went away with SAM, not by the
 * user's own `exit`). */
export function canReopen(exit: TabExit | null): boolean {
  return exit === null || exit.reason === "gone" || exit.reason === "agent_stopping";
}

export function describeExit(exit: TabExit): string {
  return exitText(exit);
}

export class TerminalManager {
  readonly client: TerminalClient;
  private readonly screens = new Map<string, Screen>();
  private readonly subscribers = new Set<() => void>();
  private active: string | null;
  private problem: TerminalsSnapshot["problem"] = null;
  private current: TerminalsSnapshot;
  private firstOutputMarked = false;
  private readonly storageKey: string;

  constructor(readonly workspaceId: string) {
    this.storageKey = `sam.terminal.active.${workspaceId}`;
    this.active = sessionStorage.getItem(this.storageKey);
    this.client = new TerminalClient({
      connectUrl: () => this.connectUrl(),
      autoCreate: DEFAULT_SIZE,
      listener: {
        output: (id, data) => this.output(id, data),
        clear: (id) => this.screens.get(id)?.terminal.reset(),
        attached: (id) => this.fit(id),
        exited: (id, exit) => this.screenFor(id).terminal.write(`\r\n\x1b[2m[${exitText(exit)}]\x1b[0m\r\n`),
        changed: () => this.publish(),
        problem: (message, code) => {
          this.problem = { message, code };
          this.publish();
        },
      },
    });
    this.client.onCreated = (id) => this.select(id);
    this.current = this.build();
    registerForTests(this);
  }

  start(): void {
    this.client.start();
  }

  dispose(): void {
    unregisterForTests(this);
    this.client.dispose();
    for (const screen of this.screens.values()) screen.terminal.dispose();
    this.screens.clear();
  }

  // --- React's side -------------------------------------------------------------------------

  subscribe = (listener: () => void): (() => void) => {
    this.subscribers.add(listener);
    return () => this.subscribers.delete(listener);
  };

  snapshot = (): TerminalsSnapshot => this.current;

  /** Attach tab `sessionId`'s screen to its pane element (once per element). */
  mount(sessionId: string, element: HTMLElement | null): void {
    if (element === null) return;
    const screen = this.screenFor(sessionId);
    if (screen.element === element) return;
    screen.element = element;
    screen.terminal.open(element);
    this.fit(sessionId);
    if (sessionId === this.current.active) screen.terminal.focus();
  }

  select(sessionId: string): void {
    this.active = sessionId;
    sessionStorage.setItem(this.storageKey, sessionId);
    this.publish();
    // The pane becomes visible in this render; measure it after layout.
    requestAnimationFrame(() => {
      this.fit(sessionId);
      this.screens.get(sessionId)?.terminal.focus();
    });
  }

  newTab(): void {
    const size = this.activeSize();
    this.client.create(size.cols, size.rows);
  }

  /** Start a new shell under a tab whose shell is gone (after an agent restart). */
  restartTab(sessionId: string): void {
    const size = this.activeSize();
    this.screens.get(sessionId)?.terminal.reset();
    this.client.create(size.cols, size.rows, sessionId);
  }

  closeTab(sessionId: string): void {
    this.client.close(sessionId);
  }

  dismissProblem(): void {
    this.problem = null;
    this.publish();
  }

  /** Fit the visible screen to its pane and tell the agent the size. */
  fitActive(): void {
    if (this.current.active) this.fit(this.current.active);
  }

  // --- internals ----------------------------------------------------------------------------

  private async connectUrl(): Promise<string> {
    try {
      const minted = await api.terminalToken(this.workspaceId);
      const url = new URL(minted.url);
      url.searchParams.set("token", minted.token);
      return url.toString();
    } catch (error) {
      if (error instanceof ApiError) {
        // Retry what may pass by itself (network, rate limit, a hiccup of the API); the
        // rest (not running, not yours, signed out) needs the user or the page.
        const retry = error.status === 0 || error.status === 429 || error.status >= 500;
        throw new ConnectRefused(error.message, error.code, retry);
      }
      throw error;
    }
  }

  private screenFor(sessionId: string): Screen {
    let screen = this.screens.get(sessionId);
    if (screen) return screen;
    const terminal = new Terminal({
      cursorBlink: true,
      fontFamily: 'ui-monospace, "SFMono-Regular", "DejaVu Sans Mono", Menlo, Consolas, monospace',
      fontSize: 14,
      scrollback: 5000,
      theme: THEME,
      ...DEFAULT_SIZE,
    });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    const encoder = new TextEncoder();
    terminal.onData((data) => this.client.input(sessionId, encoder.encode(data)));
    terminal.onBinary((data) => {
      const bytes = Uint8Array.from(data, (c) => c.charCodeAt(0) & 0xff);
      this.client.input(sessionId, bytes);
    });
    const leaving = leaveKeys(terminal);
    terminal.attachCustomKeyEventHandler((event) => leaving(event) && clipboardKeys(terminal, event));
    screen = { terminal, fit, element: null };
    this.screens.set(sessionId, screen);
    return screen;
  }

  private output(sessionId: string, data: Uint8Array): void {
    this.screenFor(sessionId).terminal.write(data);
    if (!this.firstOutputMarked) {
      this.firstOutputMarked = true;
      performance.mark("sam:terminal-first-output");
    }
  }

  private fit(sessionId: string): void {
    const screen = this.screens.get(sessionId);
    if (!screen?.element || screen.element.offsetParent === null) return;
    const tab = this.client.tabs.find((t) => t.sessionId === sessionId);
    if (tab?.readOnly) {
      // An agent's command keeps the size it runs at; the screen shows it as it is.
      screen.terminal.options.disableStdin = true;
      if (tab.cols && tab.rows) screen.terminal.resize(tab.cols, tab.rows);
      return;
    }
    const size = screen.fit.proposeDimensions();
    if (!size || !Number.isFinite(size.cols) || !Number.isFinite(size.rows)) return;
    const cols = Math.max(2, size.cols);
    const rows = Math.max(1, size.rows);
    if (cols !== screen.terminal.cols || rows !== screen.terminal.rows) screen.terminal.resize(cols, rows);
    this.client.resize(sessionId, cols, rows);
  }

  private activeSize(): { cols: number; rows: number } {
    const screen = this.current.active ? this.screens.get(this.current.active) : undefined;
    return screen ? { cols: screen.terminal.cols, rows: screen.terminal.rows } : DEFAULT_SIZE;
  }

  private build(): TerminalsSnapshot {
    const tabs = this.client.tabs.map((tab) => ({ ...tab }));
    let active = this.active;
    if (!tabs.some((tab) => tab.sessionId === active)) active = tabs[0]?.sessionId ?? null;
    return {
      status: this.client.status,
      tabs,
      active,
      retryInMs: this.client.retryInMs,
      problem: this.problem,
    };
  }

  private publish(): void {
    this.current = this.build();
    for (const subscriber of this.subscribers) subscriber();
  }
}

const FOCUSABLE =
  'a[href], button:not([disabled]), input:not([disabled]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';
const MODIFIERS = new Set(["Shift", "Control", "Alt", "Meta"]);

/** Esc then Tab (Shift+Tab: backwards) moves the focus out of the terminal, as in
 * CodeMirror: xterm.js keeps Tab for the shell's completion, so keyboard users need a way
 * out. Esc itself still reaches the shell (vim, less). Terminals.tsx shows the keys under
 * the terminal. Returns false for keys handled here. */
function leaveKeys(terminal: Terminal): (event: KeyboardEvent) => boolean {
  let armed = false;
  return (event) => {
    if (event.type !== "keydown" || MODIFIERS.has(event.key)) return true;
    const leave = armed && event.key === "Tab" && !event.ctrlKey && !event.altKey && !event.metaKey;
    armed = event.key === "Escape";
    if (!leave) return true;
    event.preventDefault();
    moveFocus(terminal.textarea, event.shiftKey);
    return false;
  };
}

function moveFocus(from: HTMLElement | undefined, backwards: boolean): void {
  const focusable = Array.from(document.querySelectorAll<HTMLElement>(FOCUSABLE)).filter(
    (element) => element === from || element.offsetParent !== null,
  );
  const here = from ? focusable.indexOf(from) : -1;
  const next = focusable[here + (backwards ? -1 : 1)];
  if (next) next.focus();
  else from?.blur();
}

/** Ctrl+Shift+C copies the selection and Ctrl+Shift+V pastes, as in desktop terminals
 * (plain Ctrl+C must stay an interrupt). Returns false for keys handled here. */
function clipboardKeys(terminal: Terminal, event: KeyboardEvent): boolean {
  if (event.type !== "keydown" || !event.ctrlKey || !event.shiftKey || event.altKey) return true;
  const key = event.key.toLowerCase();
  if (key === "c" && terminal.hasSelection()) {
    void navigator.clipboard?.writeText(terminal.getSelection()).catch(() => undefined);
    event.preventDefault();
    return false;
  }
  if (key === "v") {
    void navigator.clipboard
      ?.readText()
      .then((text) => terminal.paste(text))
      .catch(() => undefined);
    event.preventDefault();
    return false;
  }
  return true;
}

// The browser tests reach the live connection (e.g. to drop it) through this registry.
type Registry = { __samTerminals?: Set<TerminalManager> };

function registerForTests(manager: TerminalManager): void {
  const scope = globalThis as Registry;
  (scope.__samTerminals ??= new Set()).add(manager);
}

function unregisterForTests(manager: TerminalManager): void {
  (globalThis as Registry).__samTerminals?.delete(manager);
}
