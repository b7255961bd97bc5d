// The API's shapes, as `GET /api/openapi.json` and docs/protocols/control-plane-api.md give
// them. Only what the SPA reads is declared.

export interface User {
  id: string;
  login: string;
  name: string | null;
  email: string | null;
  avatar_url: string | null;
  is_admin: boolean;
}

export type CredentialKind = "hetzner" | "anthropic" | "openai";

export interface Credential {
  id: string;
  kind: CredentialKind | string;
  label: string;
  /** A masked hint such as "…a1b2"; the secret itself is never returned. */
  hint: string;
  created_at: string;
}

export type Provider = "local" | "hetzner";

export type NodeStatus = "pending" | "creating" | "running" | "stopping" | "stopped" | "error";
export type NodeHealth = "healthy" | "stale" | "unhealthy";

export interface Node {
  id: string;
  name: string;
  provider: Provider | string;
  status: NodeStatus | string;
  health: NodeHealth | string | null;
  size: string | null;
  location: string | null;
  ip_address: string | null;
  agent_version: string | null;
  error_message: string | null;
  last_heartbeat_at: string | null;
  ready_at: string | null;
  warm: boolean;
  warm_since: string | null;
  workspace_count: number;
  metrics: {
    cpu_percent?: number;
    memory?: { total: number; used: number };
    disk?: { total: number; used: number };
    active_workspaces?: number;
  } | null;
  created_at: string;
  updated_at: string;
}

export type WorkspaceStatus = "pending" | "creating" | "running" | "stopping" | "stopped" | "error";

export interface Workspace {
  id: string;
  name: string;
  repository: string;
  branch: string | null;
  provider: Provider | string;
  size: string | null;
  status: WorkspaceStatus | string;
  error_message: string | null;
  node_id: string | null;
  backend: string | null;
  remote_user: string | null;
  remote_folder: string | null;
  ready_at: string | null;
  created_at: string;
  updated_at: string;
  urls?: {
    boot_log: string;
    /** The agent's live boot log through ws-{id}; null until the agent has the workspace. */
    boot_log_ws: string | null;
    terminal_ws: string;
  };
  /** How often to poll the boot log while the workspace is being created. */
  boot_log_poll_seconds?: number;
}

export interface NewWorkspace {
  repository: string;
  branch?: string;
  name?: string;
  provider: Provider;
  size?: string;
}

export interface BootLogEntry {
  step: string;
  status: "started" | "succeeded" | "failed" | string;
  message: string;
  detail: string | null;
  timestamp: string;
  source?: "control-plane" | "agent" | string;
}

export interface BootLog {
  entries: BootLogEntry[];
  dropped?: number;
}

export interface TerminalToken {
  token: string;
  expires_at: number;
  /** The terminal WebSocket: ws(s)://ws-{id}.{domain}/workspaces/{id}/terminal/ws */
  url: string;
  /** The agent's live boot log, on the same terms. */
  boot_log_url: string;
  workspace_id: string;
}
