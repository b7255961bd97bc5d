import { type FormEvent, useId, useState } from "react";

import { ApiError, api } from "../api/client";
import type { User } from "../api/types";
import { ErrorNote } from "../components/ui";
import { useLoad, useTitle } from "../hooks";

const GITHUB_LOGIN = "/api/auth/github/login";
// GitHub's rule for logins, which dev sign-in names follow too.
const LOGIN_PATTERN = /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$/;

/** `sam dev` serves the app on *.localhost, where dev sign-in is on. Elsewhere it is offered
 * behind a disclosure, and the API says whether this deployment allows it. */
function looksLocal(): boolean {
  const host = window.location.hostname;
  return host === "localhost" || host.endsWith(".localhost") || host === "127.0.0.1";
}

export function SignInScreen({ onSignedIn }: { onSignedIn: (user: User) => void }) {
  useTitle("Sign in");
  const [githubError, setGithubError] = useState<unknown>(null);
  const [githubBusy, setGithubBusy] = useState(false);
  const [showDev, setShowDev] = useState(looksLocal);
  // Until the deployment has said, GitHub comes first (a production deployment has it);
  // `sam dev` without a GitHub app puts the sign-in that works first.
  const offered = useLoad(() => api.deployment(), []);
  const devFirst = offered.data !== undefined && !offered.data.sign_in.github && offered.data.sign_in.development;
  const settled = offered.state !== "loading";

  const signInWithGitHub = async () => {
    setGithubBusy(true);
    setGithubError(null);
    // Ask first without following the redirect: a deployment without a GitHub app answers
    // with a JSON error worth showing here, rather than as a raw page.
    try {
      const probe = await fetch(GITHUB_LOGIN, { redirect: "manual", credentials: "same-origin" });
      if (probe.type === "opaqueredirect" || (probe.status >= 300 && probe.status < 400)) {
        window.location.assign(GITHUB_LOGIN);
        return;
      }
      const body = (await probe.json().catch(() => ({}))) as { error?: string; message?: string };
      setGithubError(
        new ApiError(probe.status, body.error ?? `http_${probe.status}`, body.message ?? "GitHub sign-in failed."),
      );
    } catch {
      setGithubError(new ApiError(0, "network_error", "Could not reach the SAM API. Check your connection and try again."));
    }
    setGithubBusy(false);
  };

  const github = (
    <>
      <button
        type="button"
        className={`button button-block ${devFirst ? "button-quiet" : "button-primary"}`}
        onClick={() => void signInWithGitHub()}
        disabled={githubBusy}
      >
        <GitHubMark /> {githubBusy ? "Opening GitHub…" : "Sign in with GitHub"}
      </button>
      {githubError !== null && <ErrorNote error={githubError} />}
    </>
  );

  return (
    <main className="centered sign-in">
      <div className="card narrow">
        <div className="sign-in-brand">
          <img src="/favicon.svg" alt="" width="40" height="40" />
          <h1>Sign in to SAM</h1>
        </div>
        <p className="muted">Ephemeral AI coding environments on your own cloud account.</p>
        {/* The choices wait for the deployment's answer (or its failure), so they never
            move under the user: without a GitHub app, the sign-in that works comes first. */}
        {settled && !devFirst && github}
        {!settled ? null : showDev || devFirst ? (
          <DevSignIn onSignedIn={onSignedIn} primary={devFirst} />
        ) : (
          <button type="button" className="link-button" onClick={() => setShowDev(true)}>
            Sign in without GitHub (local development)
          </button>
        )}
        {devFirst && <p className="muted small sign-in-other">GitHub sign-in is not configured on this deployment.</p>}
        {devFirst && github}
      </div>
    </main>
  );
}

function DevSignIn({ onSignedIn, primary = false }: { onSignedIn: (user: User) => void; primary?: boolean }) {
  const id = useId();
  const [login, setLogin] = useState("");
  const [error, setError] = useState<unknown>(null);
  const [busy, setBusy] = useState(false);

  const submit = async (event: FormEvent) => {
    event.preventDefault();
    const name = login.trim();
    if (!LOGIN_PATTERN.test(name)) {
      setError(
        new ApiError(400, "invalid_login", "Use 1–39 letters, digits or hyphens, starting with a letter or digit."),
      );
      return;
    }
    setBusy(true);
    setError(null);
    try {
      onSignedIn(await api.devLogin(name));
    } catch (failure) {
      setError(failure);
      setBusy(false);
    }
  };

  return (
    <form className="dev-sign-in" onSubmit={(event) => void submit(event)} noValidate>
      <h2>Development sign-in</h2>
      <p className="muted small">
        For <code>sam dev</code> only: a local account, no GitHub needed.
      </p>
      <div className="field">
        <label htmlFor={`${id}-login`}>User name</label>
        <input
          id={`${id}-login`}
          name="login"
          autoComplete="username"
          autoCapitalize="off"
          spellCheck={false}
          value={login}
          onChange={(event) => setLogin(event.target.value)}
          aria-invalid={error !== null}
          aria-describedby={error !== null ? `${id}-error` : undefined}
          required
        />
      </div>
      {error !== null && (
        <div id={`${id}-error`}>
          <ErrorNote error={error} />
        </div>
      )}
      <button type="submit" className={`button button-block ${primary ? "button-primary" : ""}`} disabled={busy}>
        {busy ? "Signing in…" : "Sign in"}
      </button>
    </form>
  );
}

function GitHubMark() {
  return (
    <svg viewBox="0 0 16 16" width="18" height="18" aria-hidden="true" fill="currentColor">
      <path d="M8 0C3.58 0 0 3.58 0 8c0 3.54 2.29 6.53 5.47 7.59.4.07.55-.17.55-.38 0-.19-.01-.82-.01-1.49-2.01.37-2.53-.49-2.69-.94-.09-.23-.48-.94-.82-1.13-.28-.15-.68-.52-.01-.53.63-.01 1.08.58 1.23.82.72 1.21 1.87.87 2.33.66.07-.52.28-.87.51-1.07-1.78-.2-3.64-.89-3.64-3.95 0-.87.31-1.59.82-2.15-.08-.2-.36-1.02.08-2.12 0 0 .67-.21 2.2.82.64-.18 1.32-.27 2-.27.68 0 1.36.09 2 .27 1.53-1.04 2.2-.82 2.2-.82.44 1.1.16 1.92.08 2.12.51.56.82 1.27.82 2.15 0 3.07-1.87 3.75-3.65 3.95.29.25.54.73.54 1.48 0 1.07-.01 1.93-.01 2.2 0 .21.15.46.55.38A8.013 8.013 0 0016 8c0-4.42-3.58-8-8-8z" />
    </svg>
  );
}
