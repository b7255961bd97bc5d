/**
 * A project: its chats in a sidebar (topic, status, last activity, New chat, Tasks) beside the
 * chat shown (or a New chat composer, or the project's tasks), and its own rename and delete.
 */

import { type FormEvent, useEffect, useId, useState, useSyncExternalStore } from "react";

import { ConfirmButton, ErrorNote, Loading, PageHeader, StatusBadge, When } from "../components/ui";
import { useLoad, useTitle } from "../hooks";
import { Link, navigate } from "../router";
import type { Project } from "../api/types";
import { projectsApi } from "./api";
import { TasksPanel } from "../tasks/TasksPanel";
import { ChatList } from "./chatList";
import { ChatView } from "./ChatView";
import { Composer } from "./Composer";
import { MAX_PROJECT_NAME_CHARS } from "./NewProjectScreen";
import { afterOpeningChat } from "./openingChat";
import type { ChatInfo } from "./protocol";

export function ProjectScreen({ id, chatId, tasks }: { id: string; chatId: string | null; tasks: boolean }) {
  // Opened on a chat, the page shows the chat's first page before asking for the project
  // and its chat list (openingChat.ts): the server answers the chat first.
  const project = useLoad(() => afterOpeningChat(id, chatId).then(() => projectsApi.project(id)), [id]);
  const [list, setList] = useState<ChatList | null>(null);
  useEffect(() => {
    const created = new ChatList(id);
    let live = true;
    setList(created);
    void afterOpeningChat(id, chatId).then(() => live && created.start());
    return () => {
      live = false;
      created.dispose();
    };
  }, [id]);
  useTitle(project.data?.name ?? "Project");
  const chatCount = useSyncExternalStore(list?.subscribe ?? noSubscription, () => list?.snapshot().chats?.length ?? null);

  if (project.state === "error" && !project.data) return <ErrorNote error={project.error} onRetry={() => void project.reload()} />;
  return (
    <>
      {project.data ? (
        <ProjectHeader project={project.data} onRenamed={() => void project.reload()} chatCount={chatCount} />
      ) : (
        <Loading what="the project" />
      )}
      <div className="project-layout">
        {list && <ChatSidebar projectId={id} list={list} current={chatId} tasks={tasks} />}
        <div className="project-main">
          {tasks ? (
            <TasksPanel projectId={id} />
          ) : chatId ? (
            <ChatView key={chatId} projectId={id} chatId={chatId} />
          ) : (
            <NewChat projectId={id} onCreated={(chat) => list?.add(chat)} />
          )}
        </div>
      </div>
    </>
  );
}

const noSubscription = () => () => {};

function ProjectHeader({ project, onRenamed, chatCount }: { project: Project; onRenamed: () => void; chatCount: number | null }) {
  const [renaming, setRenaming] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const chats = chatCount === null ? "all its chats" : chatCount === 1 ? "its 1 chat" : `its ${chatCount} chats`;
  const remove = async () => {
    try {
      await projectsApi.remove(project.id);
      navigate("/");
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <>
      <PageHeader
        title={project.name}
        actions={
          !renaming && (
            <>
              <button type="button" className="button button-quiet" onClick={() => setRenaming(true)}>
                Rename
              </button>
              <ConfirmButton label="Delete" confirmLabel={`Delete ${project.name} and ${chats}`} onConfirm={remove} />
            </>
          )
        }
      >
        <p className="muted">
          <Link href="/">Projects</Link> / <span className="mono">{project.repository}</span>
          {project.default_branch && <> · {project.default_branch}</>}
        </p>
      </PageHeader>
      {renaming && (
        <RenameForm
          project={project}
          onDone={(renamed) => {
            setRenaming(false);
            if (renamed) onRenamed();
          }}
        />
      )}
      {error !== null && <ErrorNote error={error} />}
    </>
  );
}

function RenameForm({ project, onDone }: { project: Project; onDone: (renamed: boolean) => void }) {
  const id = useId();
  const [name, setName] = useState(project.name);
  const [error, setError] = useState<unknown>(null);
  const tooLong = name.trim().length > MAX_PROJECT_NAME_CHARS;
  const submit = async (event: FormEvent) => {
    event.preventDefault();
    if (!name.trim() || tooLong) {
      setError(new Error(`Enter a name of 1 to ${MAX_PROJECT_NAME_CHARS} characters.`));
      return;
    }
    try {
      await projectsApi.change(project.id, { name: name.trim() });
      onDone(true);
    } catch (failure) {
      setError(failure);
    }
  };
  return (
    <form className="card form rename" onSubmit={(event) => void submit(event)} noValidate>
      <div className="field">
        <label htmlFor={`${id}-name`}>New name</label>
        <input id={`${id}-name`} value={name} autoFocus aria-invalid={tooLong} onChange={(event) => setName(event.target.value)} />
      </div>
      {error !== null && <ErrorNote error={error} />}
      <div className="form-actions">
        <button type="submit" className="button button-primary">
          Save name
        </button>
        <button type="button" className="button button-quiet" onClick={() => onDone(false)}>
          Cancel
        </button>
      </div>
    </form>
  );
}

function ChatSidebar({
  projectId,
  list,
  current,
  tasks,
}: {
  projectId: string;
  list: ChatList;
  current: string | null;
  tasks: boolean;
}) {
  const { chats, problem } = useSyncExternalStore(list.subscribe, list.snapshot);
  return (
    <nav className="chat-sidebar" aria-label="Chats">
      <Link
        href={`/projects/${projectId}`}
        className="button button-primary button-small"
        aria-current={current === null && !tasks ? "page" : undefined}
      >
        New chat
      </Link>
      <Link
        href={`/projects/${projectId}/tasks`}
        className="button button-small"
        aria-current={tasks ? "page" : undefined}
      >
        Tasks
      </Link>
      {problem && <p className="small error-text" role="alert">{problem.message}</p>}
      {chats === null && !problem && <Loading what="chats" />}
      {chats && chats.length === 0 && <p className="muted small">No chats yet.</p>}
      {chats && chats.length > 0 && (
        <ul className="chat-list">
          {chats.map((chat) => (
            <ChatRow key={chat.id} chat={chat} current={chat.id === current} />
          ))}
        </ul>
      )}
    </nav>
  );
}

function ChatRow({ chat, current }: { chat: ChatInfo; current: boolean }) {
  return (
    <li className={`chat-row ${current ? "chat-row-current" : ""}`} data-testid="chat-row">
      <Link href={`/projects/${chat.project_id}/chats/${chat.id}`} aria-current={current ? "page" : undefined} className="chat-row-link">
        <span className="chat-row-topic">{chat.topic}</span>
        <span className="chat-row-meta small muted">
          <StatusBadge status={chat.status} /> <When iso={chat.last_activity_at} />
        </span>
      </Link>
    </li>
  );
}

function NewChat({ projectId, onCreated }: { projectId: string; onCreated: (chat: ChatInfo) => void }) {
  const [error, setError] = useState<unknown>(null);
  const start = async (text: string): Promise<boolean> => {
    setError(null);
    try {
      const chat = await projectsApi.newChat(projectId, text.trim());
      onCreated(chat);
      navigate(`/projects/${projectId}/chats/${chat.id}`);
      return true;
    } catch (failure) {
      setError(failure);
      return false;
    }
  };
  return (
    <section className="chat chat-new" aria-label="New chat">
      <h2>New chat</h2>
      <p className="muted">
        Ask the agent about the repository. SAM finds or starts a node, brings up a workspace and starts the agent with
        your message; the chat stays readable after the workspace is gone.
      </p>
      {error !== null && <ErrorNote error={error} />}
      <Composer label="First message" placeholder="What should the agent do?" action="Start chat" onSend={start} />
    </section>
  );
}
