/** The primary screen after sign-in: the user's projects, newest activity first. */

import { api } from "../api/client";
import { Onboarding } from "../components/Onboarding";
import { EmptyState, ErrorNote, Loading, PageHeader, When } from "../components/ui";
import { useLoad, useTitle } from "../hooks";
import { Link } from "../router";
import type { Project } from "../api/types";
import { projectsApi } from "./api";
import type { ChatInfo } from "./protocol";

/** A project's last activity: its newest chat's, else its own last change. */
export function lastActivity(project: Project, chats: readonly ChatInfo[]): string {
  return chats
    .filter((chat) => chat.project_id === project.id)
    .reduce((latest, chat) => (chat.last_activity_at > latest ? chat.last_activity_at : latest), project.updated_at);
}

export function ProjectsScreen() {
  useTitle("Projects");
  const projects = useLoad(() => Promise.all([projectsApi.projects(), projectsApi.allChats()]), []);
  const credentials = useLoad(() => api.credentials(), []);
  const rows = projects.data
    ? projects.data[0]
        .map((project) => ({ project, active: lastActivity(project, projects.data![1]) }))
        .sort((a, b) => b.active.localeCompare(a.active))
    : null;
  return (
    <>
      <PageHeader
        title="Projects"
        actions={
          <Link href="/projects/new" className="button button-primary">
            New project
          </Link>
        }
      >
        <p className="muted">A project is a repository and its chats with the agent; the chats stay when workspaces go.</p>
      </PageHeader>
      {credentials.data && rows && (
        <Onboarding
          credentials={credentials.data}
          first={{
            done: rows.length > 0,
            title: "Create your first project",
            detail: "From a repository URL, or a local path on a local node; then chat with the agent about it.",
            href: "/projects/new",
            action: "New project",
          }}
        />
      )}
      {projects.state === "loading" && <Loading what="projects" />}
      {projects.state === "error" && <ErrorNote error={projects.error} onRetry={() => void projects.reload()} />}
      {rows && rows.length === 0 && (
        <EmptyState title="No projects yet">
          <p className="muted">Start from a repository: then ask the agent about it in a chat.</p>
          <Link href="/projects/new" className="button">
            Create your first project
          </Link>
        </EmptyState>
      )}
      {rows && rows.length > 0 && (
        <ul className="rows card" aria-label="Projects">
          {rows.map(({ project, active }) => (
            <li key={project.id} className="row" data-testid="project-row">
              <div className="row-main">
                <Link href={`/projects/${project.id}`} className="row-title">
                  {project.name}
                </Link>
                <div className="muted small">
                  <span className="mono">{project.repository}</span>
                  {project.default_branch && <> · {project.default_branch}</>} · active <When iso={active} />
                </div>
              </div>
            </li>
          ))}
        </ul>
      )}
    </>
  );
}
