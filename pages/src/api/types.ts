// The API's shapes, named for the screens. They are aliases over openapi.d.ts, which
// `npm run api:types` generates from the API's own /api/openapi.json (the pydantic response
// models of worker/api/routes/); tests/pages/test_api_types.py fails when it is stale.

import type { components } from "./openapi";

type Schemas = components["schemas"];

export type User = Schemas["UserOut"];
export type CredentialKind = Schemas["CredentialKind"];
/** `hint` is a masked hint such as "…a1b2"; the secret itself is never returned. */
export type Credential = Schemas["CredentialOut"];
export type Provider = Schemas["Provider"];
/** The six states of a node or a workspace (wire/states.py). */
export type LifecycleState = Schemas["LifecycleState"];
export type NodeHealth = Schemas["NodeHealth"];
export type Node = Schemas["NodeOut"];
export type Workspace = Schemas["WorkspaceOut"];
export type NewWorkspace = Schemas["NewWorkspace"];
type BootLogLine = Schemas["BootLogLine"];
/** Polled entries say where they came from; live ones, straight from the agent, do not. */
export type BootLogEntry = Omit<BootLogLine, "source"> & Partial<Pick<BootLogLine, "source">>;
export type BootLog = Schemas["BootLogOut"];
export type TerminalToken = Schemas["TerminalToken"];
/** What the deployment offers: sign-in methods, and each provider with why it is not available. */
export type Deployment = Schemas["DeploymentOut"];
export type ProviderOption = Schemas["ProviderOption"];
/** A repository and the defaults its chats start with (docs/protocols/project-chat.md). */
export type Project = Schemas["ProjectOut"];
export type NewProject = Schemas["NewProject"];
export type ProjectChanges = Schemas["ProjectChanges"];
/** The GitHub App's installations the user recorded, what they reach, and their branches. */
export type GitHubInstallation = Schemas["InstallationOut"];
export type GitHubRepository = Schemas["RepositoryOut"];
export type GitHubBranch = Schemas["BranchOut"];
/** A task: a message that ends in a pull request, on its own `sam/<slug>-<id>` branch. */
export type Task = Schemas["Task"];
export type TaskStatus = Schemas["TaskStatus"];
/** The steps of a task's run (worker/chats/run.py). */
export type Step = Schemas["Step"];
