/**
 * A project's chats for its sidebar: the list, then kept in step by the project's viewer
 * WebSocket (no `chat=`: `chat` and `chat_deleted` events for every chat of the project).
 * After a reconnect the list is read again, as events may have been missed meanwhile.
 */

import { LiveStore, type Problem, problemOf } from "../store";
import { projectsApi, viewerUrl } from "./api";
import type { ChatInfo, ViewerFrame } from "./protocol";
import { ViewerSocket, type ViewerStatus } from "./viewerSocket";

export interface ChatListSnapshot {
  /** Newest activity first; null until the first list arrives. */
  chats: ChatInfo[] | null;
  viewer: ViewerStatus;
  problem: Problem | null;
}

function byActivity(chats: ChatInfo[]): ChatInfo[] {
  return [...chats].sort((a, b) => b.last_activity_at.localeCompare(a.last_activity_at));
}

export class ChatList extends LiveStore<ChatListSnapshot> {
  private viewer: ViewerSocket;
  private opened = false;

  constructor(readonly projectId: string) {
    super({ chats: null, viewer: "connecting", problem: null });
    this.viewer = new ViewerSocket(() => viewerUrl(projectId), {
      frame: (frame) => this.receive(frame),
      status: (viewer) => {
        if (viewer === "open" && this.opened) void this.reload();
        if (viewer === "open") this.opened = true;
        this.update({ viewer });
      },
      bad: (error) => this.update({ problem: { code: "bad_frame", message: error.message } }),
    });
  }

  start(): void {
    this.viewer.open();
    void this.reload();
  }

  async reload(): Promise<void> {
    try {
      this.update({ chats: byActivity(await projectsApi.chats(this.projectId)), problem: null });
    } catch (error) {
      this.update({ problem: problemOf(error) });
    }
  }

  /** A chat this page just created, before its event arrives. */
  add(chat: ChatInfo): void {
    this.receive({ type: "chat", chat });
  }

  override dispose(): void {
    this.viewer.close();
    super.dispose();
  }

  private receive(frame: ViewerFrame): void {
    const chats = this.current.chats ?? [];
    if (frame.type === "chat") {
      this.update({ chats: byActivity([frame.chat, ...chats.filter((c) => c.id !== frame.chat.id)]) });
    } else if (frame.type === "chat_deleted") {
      this.update({ chats: chats.filter((c) => c.id !== frame.chat_id) });
    } else if (frame.type === "error") {
      this.update({ problem: { code: frame.code, message: frame.message } });
    }
  }
}
