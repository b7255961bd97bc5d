import "@xterm/xterm/css/xterm.css";
import "./styles.css";

import { StrictMode } from "react";
import { createRoot } from "react-dom/client";

import { App, startSignInCheck } from "./App";
import { loadMarkdown } from "./agent/markdownLoader";
import { ErrorBoundary } from "./components/ErrorBoundary";
import { startOpeningChat } from "./projects/openingChat";
import { reportUncaughtErrors } from "./report";

reportUncaughtErrors();
// The first requests leave now, together, not one after another as screens mount.
startSignInCheck();
startOpeningChat(window.location.pathname);
void loadMarkdown();

createRoot(document.getElementById("root")!).render(
  <StrictMode>
    <ErrorBoundary>
      <App />
    </ErrorBoundary>
  </StrictMode>,
);
