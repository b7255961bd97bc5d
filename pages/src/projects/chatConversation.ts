/**
 * A project chat's messages as the conversation the page shows: the Agent tab's reducer
 * (agent/conversation.ts), ordered by each message's project seq. The page holds a window
 * of the history (the newest page, then older pages as the reader scrolls up), so adding an
 * older page rebuilds the conversation from the messages it holds, in order.
 */

import { type Conversation, applyAt, emptyConversation } from "../agent/conversation";
import type { ChatMessage } from "./protocol";

export function applyMessage(conversation: Conversation, message: ChatMessage): Conversation {
  const frame = message.truncated ? { type: "truncated" as const, role: message.role } : message.frame;
  return applyAt(conversation, message.seq, frame);
}

export function chatConversation(messages: readonly ChatMessage[]): Conversation {
  return messages.reduce(applyMessage, emptyConversation("idle"));
}

/** `held` and `page` together, each seq once, in seq order. */
export function mergeMessages(held: readonly ChatMessage[], page: readonly ChatMessage[]): ChatMessage[] {
  const bySeq = new Map<number, ChatMessage>();
  for (const message of [...held, ...page]) bySeq.set(message.seq, message);
  return [...bySeq.values()].sort((a, b) => a.seq - b.seq);
}
