/**
 * The API client: same-origin `fetch('/api/…')` with the session cookie (and, for the
 * agent sessions, a workspace's own host with a token: no cookie crosses to it). Every failure
 * becomes an `ApiError` carrying the API's own `{"error", "message"}`, so screens show
 * exactly what the API said (and a network failure says what to check).
 */

import type {
  BootLog,
  Credential,
  Deployment,
  CredentialKind,
  GitHubBranch,
  GitHubInstallation,
  GitHubRepository,
  NewWorkspace,
  Node,
  TerminalToken,
  User,
  Workspace,
} from "./types";

export class ApiError extends Error {
  constructor(
    /** HTTP status; 0 when the API could not be reached at all. */
    readonly status: number,
    /** The API's `error` code, e.g. "invalid_credential". */
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

type Method = "GET" | "POST" | "PUT" | "PATCH" | "DELETE";

/** Called on every 401 from a signed-in route, so the app can show sign-in again. */
let onUnauthorized: (() => void) | null = null;

export function setUnauthorizedHandler(handler: (() => void) | null): void {
  onUnauthorized = handler;
}

export async function request<T>(method: Method, path: string, body?: unknown): Promise<T> {
  const init: RequestInit = {
    method,
    credentials: "same-origin",
    headers: { Accept: "application/json" },
  };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    (init.headers as Record<string, string>)["Content-Type"] = "application/json";
  }
  let response: Response;
  try {
    response = await fetch(path, init);
  } catch {
    throw new ApiError(
      0,
      "network_error",
      "Could not reach the SAM API. Check your connection (or that `scripts/dev` is running) and try again.",
    );
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  let parsed: unknown = undefined;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    // not JSON: handled below
  }
  if (!response.ok) {
    const problem = parsed as { error?: unknown; message?: unknown } | undefined;
    const code = typeof problem?.error === "string" ? problem.error : `http_${response.status}`;
    const message =
      typeof problem?.message === "string"
        ? problem.message
        : `The API answered ${response.status} ${response.statusText}.`.replace(" .", ".");
    // Only the API's own 401 means signed out (a workspace's host refuses a stale token).
    if (response.status === 401 && path.startsWith("/api/") && path !== "/api/auth/me") onUnauthorized?.();
    throw new ApiError(response.status, code, message);
  }
  if (parsed === undefined && text) {
    throw new ApiError(response.status, "bad_response", "The API answered something that is not JSON.");
  }
  return parsed as T;
}

const enc = encodeURIComponent;

export const api = {
  // --- sign-in ---
  /** What this deployment offers (public): sign-in methods, providers it can serve. */
  deployment: () => request<Deployment>("GET", "/api/deployment"),
  me: () => request<User>("GET", "/api/auth/me"),
  devLogin: (login: string) => request<User>("POST", "/api/auth/dev-login", { login }),
  logout: () => request<void>("POST", "/api/auth/logout"),

  // --- credentials ---
  credentials: () =>
    request<{ credentials: Credential[] }>("GET", "/api/credentials").then((r) => r.credentials),
  addCredential: (kind: CredentialKind, secret: string, label = "", baseUrl: string | null = null) =>
    request<Credential>("POST", "/api/credentials", { kind, label, secret, base_url: baseUrl }),
  deleteCredential: (id: string) => request<void>("DELETE", `/api/credentials/${enc(id)}`),

  // --- nodes ---
  nodes: () => request<{ nodes: Node[] }>("GET", "/api/nodes").then((r) => r.nodes),
  node: (id: string) => request<Node>("GET", `/api/nodes/${enc(id)}`),
  deleteNode: (id: string) => request<void>("DELETE", `/api/nodes/${enc(id)}`),

  // --- workspaces ---
  workspaces: () =>
    request<{ workspaces: Workspace[] }>("GET", "/api/workspaces").then((r) => r.workspaces),
  workspace: (id: string) => request<Workspace>("GET", `/api/workspaces/${enc(id)}`),
  createWorkspace: (spec: NewWorkspace) => request<Workspace>("POST", "/api/workspaces", spec),
  stopWorkspace: (id: string) => request<Workspace>("POST", `/api/workspaces/${enc(id)}/stop`),
  /** Clone the repository afresh, recreate the container, rerun its lifecycle commands. */
  rebuildWorkspace: (id: string) => request<Workspace>("POST", `/api/workspaces/${enc(id)}/rebuild`),
  restartWorkspace: (id: string) =>
    request<Workspace>("POST", `/api/workspaces/${enc(id)}/restart`),
  deleteWorkspace: (id: string) => request<void>("DELETE", `/api/workspaces/${enc(id)}`),
  bootLog: (id: string) => request<BootLog>("GET", `/api/workspaces/${enc(id)}/boot-log`),

  // --- the GitHub App (only when the deployment says `github_app`) ---
  /** Where "Install the GitHub App" goes: a full page load, GitHub comes back to the app. */
  githubInstallUrl: "/api/github/install",
  githubInstallations: () =>
    request<{ installations: GitHubInstallation[] }>("GET", "/api/github/installations").then((r) => r.installations),
  githubRepositories: () =>
    request<{ repositories: GitHubRepository[] }>("GET", "/api/github/repositories").then((r) => r.repositories),
  githubBranches: (owner: string, name: string) =>
    request<{ branches: GitHubBranch[] }>(
      "GET",
      `/api/github/repositories/${enc(owner)}/${enc(name)}/branches`,
    ).then((r) => r.branches),

  // --- terminals ---
  terminalToken: (workspaceId: string) =>
    request<TerminalToken>("POST", "/api/terminal/token", { workspace_id: workspaceId }),
};

/** The message to show for any failure. */
export function messageOf(error: unknown): string {
  if (error instanceof Error) return error.message;
  return String(error);
}
