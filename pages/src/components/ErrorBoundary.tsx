import { Component, type ErrorInfo, type ReactNode } from "react";

import { reportError } from "../report";

/** The last resort for a bug in a screen: say so, report it, and offer a way out. */
export class ErrorBoundary extends Component<{ children: ReactNode }, { error: Error | null }> {
  override state = { error: null as Error | null };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    reportError(error, `React: ${info.componentStack ?? ""}`);
  }

  override render() {
    if (this.state.error === null) return this.props.children;
    return (
      <main className="centered">
        <div className="card narrow" role="alert">
          <h1>Something went wrong</h1>
          <p>This page hit a bug and stopped. It has been reported.</p>
          <p className="muted small mono">{this.state.error.message}</p>
          <button type="button" className="button button-primary" onClick={() => window.location.reload()}>
            Reload the page
          </button>
        </div>
      </main>
    );
  }
}
