// git's credential helper inside a workspace container (git-credential(1), `get` only):
// asks SAM's node agent, over the workspace's own channel, for a read token for the
// workspace's repository (agent/channel/git_credentials.py). The channel's address and
// token come from the environment the agent gives its processes (SAM_CHANNEL_URL,
// SAM_CHANNEL_TOKEN); the token it answers is printed to git and kept nowhere.
// Any failure prints nothing on stdout, so git goes on to its other helpers or fails
// with its own "could not read Username", and says why on stderr.

const [operation] = process.argv.slice(2);
if (operation !== "get") process.exit(0); // store and erase: nothing is kept, nothing to do

const { SAM_CHANNEL_URL: channel, SAM_CHANNEL_TOKEN: token } = process.env;
if (!channel || !token) {
  console.error("git-credential-sam: SAM_CHANNEL_URL and SAM_CHANNEL_TOKEN are not set");
  process.exit(0);
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const asked = {};
for (const line of input.split("\n")) {
  const at = line.indexOf("=");
  if (at > 0) asked[line.slice(0, at)] = line.slice(at + 1);
}

try {
  const answer = await fetch(`${channel.replace(/\/$/, "")}/git/credential`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify({ protocol: asked.protocol ?? "", host: asked.host ?? "" }),
    signal: AbortSignal.timeout(30_000),
  });
  const body = await answer.json();
  if (!answer.ok) {
    console.error(`git-credential-sam: ${body.message ?? answer.status}`);
  } else {
    process.stdout.write(`username=${body.username}\npassword=${body.password}\n`);
  }
} catch (error) {
  console.error(`git-credential-sam: SAM's channel did not answer (${error.message})`);
}
