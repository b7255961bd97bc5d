/**
 * What a page load starts before the app's screens and React's renderer are evaluated:
 * the sign-in check, the chat a chat's address opens on (openingChat.ts), and the markdown
 * chunk. main.tsx imports this first, so these leave as soon as the script runs, together.
 */

import { loadMarkdown } from "./agent/markdownLoader";
import { startOpeningChat } from "./projects/openingChat";
import { startSignInCheck } from "./signInCheck";

startSignInCheck();
startOpeningChat(window.location.pathname);
void loadMarkdown();
