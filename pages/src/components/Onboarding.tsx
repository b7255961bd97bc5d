import type { Credential } from "../api/types";
import { Link } from "../router";

export interface Step {
  done: boolean;
  title: string;
  detail: string;
  href: string;
  action: string;
}

/** First steps, until all are done: a cloud credential, an agent key, then `first` (the
 * screen's own: a first project, a first workspace). */
export function Onboarding({ credentials, first }: { credentials: Credential[]; first: Step }) {
  const steps: Step[] = [
    {
      done: credentials.some((c) => c.kind === "hetzner"),
      title: "Connect your Hetzner Cloud account",
      detail: "Not needed for local nodes under sam dev.",
      href: "/settings?kind=hetzner",
      action: "Add a Hetzner token",
    },
    {
      done: credentials.some((c) => c.kind === "anthropic" || c.kind === "openai"),
      title: "Add an API key for the coding agent",
      detail: "Anthropic for Claude Code, or OpenAI.",
      href: "/settings?kind=anthropic",
      action: "Add an agent key",
    },
    first,
  ];
  if (steps.every((step) => step.done)) return null;
  return (
    <section className="card onboarding" aria-labelledby="onboarding-heading">
      <h2 id="onboarding-heading">Get started</h2>
      <ol className="checklist">
        {steps.map((step) => (
          <li key={step.title} className={step.done ? "done" : ""}>
            <span className="check" aria-hidden="true">
              {step.done ? "✓" : ""}
            </span>
            <div>
              <strong>{step.title}</strong>
              <span className="visually-hidden">{step.done ? " (done)" : " (to do)"}</span>
              <div className="muted small">{step.detail}</div>
            </div>
            {!step.done && (
              <Link href={step.href} className="button button-small">
                {step.action}
              </Link>
            )}
          </li>
        ))}
      </ol>
    </section>
  );
}
