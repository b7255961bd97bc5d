/**
 * One project chat, seen from the page (docs/protocols/project-chat.md):
 *
 *   start ─▶ the chat and its newest page of history ─▶ viewer ?chat=C&after=<newest seq>:
 *            what came since, `caught_up`, then live messages
 *   drop  ─▶ (backoff) ─▶ viewer ?after=<newest seq held>: exactly what was missed
 *            (too far behind: the pages after it over HTTP first, then the viewer again)
 *   scroll to the top ─▶ the page before the oldest held (never the whole chat at once)
 *
 * Follow-ups, Stop and permission answers are API calls; their effects come back as
 * messages on the viewer, the one live path.
 */

import type { Conversation } from "../agent/conversation";
import { LiveStore, type Problem, problemOf } from "../store";
import { projectsApi, viewerUrl } from "./api";
import { applyMessage, chatConversation, mergeMessages } from "./chatConversation";
import { type OpenedChat, PAGE_MESSAGES, openChat, takeOpenedChat } from "./openingChat";
import { type ChatInfo, type ChatMessage, MAX_PAGE_MESSAGES, type ViewerFrame } from "./protocol";
import { ViewerSocket, type ViewerStatus } from "./viewerSocket";

// What this tab answered, per chat: after a reload it still says "answered here".
const ANSWERS_PREFIX = "sam:chat-answers:";

export interface ChatSnapshot {
  chat: ChatInfo | null;
  conversation: Conversation;
  /** Older messages exist before the oldest held. */
  hasOlder: boolean;
  loadingOlder: boolean;
  /** The first page arrived. */
  loaded: boolean;
  viewer: ViewerStatus;
  /** The chat was deleted (by this user elsewhere). */
  deleted: boolean;
  problem: Problem | null;
  answered: Readonly<Record<string, string>>;
}

export class ProjectChat extends LiveStore<ChatSnapshot> {
  private messages: ChatMessage[] = [];
  private viewer: ViewerSocket | null = null;

  constructor(
    readonly projectId: string,
    readonly chatId: string,
  ) {
    super({
      chat: null,
      conversation: chatConversation([]),
      hasOlder: false,
      loadingOlder: false,
      loaded: false,
      viewer: "connecting",
      deleted: false,
      problem: null,
      answered: JSON.parse(sessionStorage.getItem(ANSWERS_PREFIX + chatId) ?? "{}") as Record<string, string>,
    });
    // Opened with the page and already answered: the first render shows it.
    const opened = takeOpenedChat(projectId, chatId);
    if (opened) this.current = { ...this.current, ...this.firstPage(opened) };
  }

  private firstPage([chat, page]: OpenedChat): Partial<ChatSnapshot> {
    this.messages = mergeMessages(this.messages, page.messages);
    return { chat, hasOlder: page.has_more, loaded: true, conversation: chatConversation(this.messages) };
  }

  async start(): Promise<void> {
    this.update({ problem: null });
    if (!this.current.loaded) {
      const opened = await this.call(() => openChat(this.projectId, this.chatId));
      if (!opened || this.disposed) return;
      this.update(this.firstPage(opened));
    }
    this.viewer = new ViewerSocket(
      () => viewerUrl(this.projectId, { id: this.chatId, after: this.current.conversation.lastSeq }),
      {
        frame: (frame) => this.receive(frame),
        status: (viewer) => this.update({ viewer }),
        bad: (error) => this.update({ problem: { code: "bad_frame", message: `The chat sent a frame this page does not understand: ${error.message}` } }),
        behind: () => void this.catchUp(),
      },
    );
    this.viewer.open();
  }

  /** The page before the oldest message held. */
  async loadOlder(): Promise<void> {
    const oldest = this.messages[0];
    if (!oldest || !this.current.hasOlder || this.current.loadingOlder) return;
    this.update({ loadingOlder: true });
    const page = await this.call(() => projectsApi.messages(this.projectId, this.chatId, { before: oldest.seq }, PAGE_MESSAGES));
    if (page) {
      this.messages = mergeMessages(page.messages, this.messages);
      this.update({ hasOlder: page.has_more, conversation: chatConversation(this.messages) });
    }
    this.update({ loadingOlder: false });
  }

  /** Missed more than the viewer replays: read what came since over HTTP, then go live. */
  private async catchUp(): Promise<void> {
    let more = true;
    while (more && !this.disposed) {
      const after = this.current.conversation.lastSeq;
      const page = await this.call(() => projectsApi.messages(this.projectId, this.chatId, { after }, MAX_PAGE_MESSAGES));
      if (!page) break;
      for (const message of page.messages) this.accept(message);
      more = page.has_more && page.messages.length > 0;
    }
    this.viewer?.open();
  }

  /** A follow-up (a stopped chat starts a fresh run with the conversation as context). */
  async send(text: string): Promise<boolean> {
    // The message shows when the viewer brings it, in its place: applying the API's answer
    // at once could put it ahead of an agent message still on its way.
    const message = await this.call(() => projectsApi.send(this.projectId, this.chatId, text.trim()));
    return message !== null;
  }

  async stop(): Promise<void> {
    const chat = await this.call(() => projectsApi.stop(this.projectId, this.chatId));
    if (chat) this.update({ chat });
  }

  /** Answer a permission request; the first answer of any viewer wins. */
  answer = (requestId: string, optionId: string): void => {
    const answered = { ...this.current.answered, [requestId]: optionId };
    sessionStorage.setItem(ANSWERS_PREFIX + this.chatId, JSON.stringify(answered));
    this.update({ answered });
    void this.call(() => projectsApi.answer(this.projectId, this.chatId, requestId, optionId)).then((done) => {
      if (done === null) this.update({ answered: this.withoutAnswer(requestId) });
    });
  };

  dismissProblem(): void {
    this.update({ problem: null });
  }

  /** Close the viewer as a network failure would (the tests' way to drop it). */
  drop(): void {
    this.viewer?.drop();
  }

  override dispose(): void {
    this.viewer?.close();
    super.dispose();
  }

  private receive(frame: ViewerFrame): void {
    switch (frame.type) {
      case "message":
        if (frame.message.chat_id === this.chatId) this.accept(frame.message);
        return;
      case "chat":
        if (frame.chat.id === this.chatId) this.update({ chat: frame.chat });
        return;
      case "chat_deleted":
        if (frame.chat_id === this.chatId) {
          this.viewer?.close();
          this.update({ deleted: true });
        }
        return;
      case "caught_up":
        return;
      case "error":
        // Too far behind is handled as the socket closes; anything else is shown.
        if (frame.code !== "too_far_behind") this.update({ problem: { code: frame.code, message: frame.message } });
        return;
    }
  }

  /** A message from the viewer: each seq shows once (a reconnect's replay overlaps nothing). */
  private accept(message: ChatMessage): void {
    const conversation = this.current.conversation;
    if (message.seq <= conversation.lastSeq) return;
    this.messages.push(message);
    this.update({ conversation: applyMessage(conversation, message) });
  }

  private withoutAnswer(requestId: string): Record<string, string> {
    const { [requestId]: _, ...rest } = this.current.answered;
    sessionStorage.setItem(ANSWERS_PREFIX + this.chatId, JSON.stringify(rest));
    return rest;
  }

  /** Run `action`; a failure becomes the snapshot's problem (and null). */
  private async call<T>(action: () => Promise<T>): Promise<T | null> {
    try {
      return await action();
    } catch (error) {
      this.update({ problem: problemOf(error) });
      return null;
    }
  }
}
