// First: the page's first requests leave before the rest of the app is evaluated.
import "./boot";
import "@xterm/xterm/css/xterm.css";
import "./styles.css";

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { App } from "./App";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { reportUncaughtErrors } from "./report";

reportUncaughtErrors();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ErrorBoundary>
      <App />
    </ErrorBoundary>
  </StrictMode>,
);
