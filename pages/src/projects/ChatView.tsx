/**
 * One project chat: its history (the newest page first; older pages as the reader scrolls
 * up), live messages, the run's progress and the workspace's boot log while it comes up, a
 * composer for follow-ups, Stop, and the way to the workspace's terminals.
 */

import { useEffect, useLayoutEffect, useRef, useState, useSyncExternalStore } from "react";

import { api } from "../api/client";
import { ConversationView } from "../agent/ConversationView";
import { openRequests } from "../agent/conversation";
import { BootLogView } from "../components/BootLog";
import { mergeBootLog, useLiveBootLog } from "../components/liveBootLog";
import { ErrorNote, Loading, StatusBadge } from "../components/ui";
import { useLoad } from "../hooks";
import { Link } from "../router";
import { ProjectChat } from "./chatStore";
import { Composer } from "./Composer";
import { openingChatShown } from "./openingChat";
import type { ChatInfo } from "./protocol";
import type { ViewerStatus } from "./viewerSocket";

/** Within this many pixels of the top, the page before is fetched. */
const LOAD_OLDER_MARGIN_PX = 200;
/** Within this many pixels of the bottom, new messages keep the view at the bottom. */
const FOLLOW_MARGIN_PX = 80;
const BOOT_LOG_POLL_MS = 2000;

const VIEWER_TEXT: Record<ViewerStatus, string> = {
  connecting: "Connecting…",
  open: "Live",
  reconnecting: "Reconnecting…",
  closed: "",
};

export function ChatView({ projectId, chatId }: { projectId: string; chatId: string }) {
  const [store, setStore] = useState<ProjectChat | null>(null);
  // Before the first paint: a chat already answered renders in this same frame.
  useLayoutEffect(() => {
    const created = new ProjectChat(projectId, chatId);
    setStore(created);
    register(created);
    void created.start();
    return () => {
      openingChatShown(projectId, chatId);
      unregister(created);
      created.dispose();
    };
  }, [projectId, chatId]);
  return store ? <LiveChat store={store} /> : null;
}

function LiveChat({ store }: { store: ProjectChat }) {
  const snapshot = useSyncExternalStore(store.subscribe, store.snapshot);
  const { chat, conversation, hasOlder, loadingOlder, loaded, viewer, deleted, problem, answered } = snapshot;
  const scroller = useRef<HTMLDivElement>(null);
  const following = useRef(true);
  const heightBefore = useRef(0);
  const firstSeq = conversation.items.find((item) => "seq" in item)?.seq ?? 0;

  // Effects run once the page is on screen: the project's secondary data may load now.
  useEffect(() => {
    if (loaded || problem) openingChatShown(store.projectId, store.chatId);
  }, [store, loaded, problem]);

  // Older messages went in above: keep what the reader was looking at where it was.
  useLayoutEffect(() => {
    const box = scroller.current;
    if (!box) return;
    if (following.current) box.scrollTop = box.scrollHeight;
    else if (heightBefore.current) box.scrollTop += box.scrollHeight - heightBefore.current;
    heightBefore.current = box.scrollHeight;
    // A page too short to scroll could never be scrolled up: fill the box first.
    if (box.scrollHeight <= box.clientHeight && hasOlder) void store.loadOlder();
  }, [conversation, firstSeq, hasOlder]);

  const onScroll = () => {
    const box = scroller.current;
    if (!box) return;
    following.current = box.scrollHeight - box.scrollTop - box.clientHeight < FOLLOW_MARGIN_PX;
    heightBefore.current = box.scrollHeight;
    if (box.scrollTop < LOAD_OLDER_MARGIN_PX && hasOlder) void store.loadOlder();
  };

  if (deleted) return <p className="note">This chat was deleted.</p>;
  const waiting = openRequests(conversation).length;
  const running = chat?.status === "starting" || chat?.status === "active";

  return (
    <section className="chat" aria-label={chat ? `Chat: ${chat.topic}` : "Chat"}>
      <div className="agent-bar">
        <h2 className="chat-topic">{chat?.topic ?? "…"}</h2>
        {chat && <StatusBadge status={chat.status} />}
        {waiting > 0 && (
          <span className="badge badge-warn" data-testid="chat-waiting">
            {waiting === 1 ? "1 question waits for you" : `${waiting} questions wait for you`}
          </span>
        )}
        <span className="agent-spacer" />
        {chat?.workspace_id && (
          <Link href={`/workspaces/${chat.workspace_id}`} className="button button-small button-quiet">
            Workspace terminals
          </Link>
        )}
        {VIEWER_TEXT[viewer] && (
          <span className={`connection connection-${viewer}`} role="status" data-testid="chat-connection">
            {VIEWER_TEXT[viewer]}
          </span>
        )}
        {running && (
          <button type="button" className="button button-small button-quiet" onClick={() => void store.stop()}>
            Stop
          </button>
        )}
      </div>
      {problem && (
        <div className="note note-error" role="alert">
          <p>{problem.message}</p>
          <button type="button" className="button button-small button-quiet" onClick={() => store.dismissProblem()}>
            Dismiss
          </button>
        </div>
      )}
      {!loaded && !problem && <Loading what="the chat" />}
      {!loaded && problem && (
        <button type="button" className="button button-small" onClick={() => void store.start()}>
          Try again
        </button>
      )}
      <div className="chat-scroll" ref={scroller} onScroll={onScroll} data-testid="chat-scroll">
        {hasOlder && (
          <button
            type="button"
            className="button button-small button-quiet chat-older"
            disabled={loadingOlder}
            onClick={() => void store.loadOlder()}
          >
            {loadingOlder ? "Loading older messages…" : "Load older messages"}
          </button>
        )}
        <ConversationView conversation={conversation} answered={answered} onAnswer={store.answer} />
        {chat?.status === "starting" && chat.workspace_id && <WorkspaceBootLog workspaceId={chat.workspace_id} />}
      </div>
      {chat && <FollowUp chat={chat} store={store} />}
    </section>
  );
}

function FollowUp({ chat, store }: { chat: ChatInfo; store: ProjectChat }) {
  const ended = chat.status === "stopped" || chat.status === "failed";
  return (
    <Composer
      label="Follow-up"
      placeholder={ended ? "Ask again: a fresh workspace starts with this conversation as context…" : "Ask a follow-up…"}
      action={ended ? "Send and restart" : "Send"}
      onSend={(text) => store.send(text)}
    />
  );
}

/** The workspace's boot log while the chat's run brings it up (as the workspace page shows it). */
function WorkspaceBootLog({ workspaceId }: { workspaceId: string }) {
  const polled = useLoad(() => api.bootLog(workspaceId), [workspaceId], BOOT_LOG_POLL_MS);
  const live = useLiveBootLog(workspaceId, true);
  const entries = mergeBootLog(polled.data?.entries ?? [], live);
  return (
    <details className="chat-boot-log" open>
      <summary>The workspace's boot log</summary>
      {polled.state === "error" && <ErrorNote error={polled.error} />}
      <BootLogView entries={entries} dropped={polled.data?.dropped} follow />
    </details>
  );
}

// The browser tests reach the live stores here (to drop a viewer as a network failure would).
type Registry = { __samProjectChats?: Set<ProjectChat> };

function register(store: ProjectChat): void {
  ((globalThis as Registry).__samProjectChats ??= new Set()).add(store);
}

function unregister(store: ProjectChat): void {
  (globalThis as Registry).__samProjectChats?.delete(store);
}
