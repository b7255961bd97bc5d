/** Where a workspace runs: the providers this deployment serves (and why not the others),
 * and a Hetzner server type. Shared by New workspace and a project's defaults. */

import { useEffect, useState } from "react";

import { api } from "../api/client";
import type { Provider, ProviderOption } from "../api/types";
import { useLoad } from "../hooks";

const PROVIDERS: { value: Provider; label: string; help: string }[] = [
  {
    value: "local",
    label: "Local node",
    help: "An agent on the machine that runs sam dev. No cloud account needed; a local path works too.",
  },
  {
    value: "hetzner",
    label: "Hetzner Cloud",
    help: "A VM in your own Hetzner project (needs a Hetzner API token in Settings).",
  },
];

function defaultProvider(): Provider {
  return window.location.hostname.endsWith("localhost") ? "local" : "hetzner";
}

/** Why this deployment cannot serve `provider` (null: it can, or we do not know yet). */
function unavailable(options: ProviderOption[] | undefined, provider: Provider): string | null {
  const option = options?.find((each) => each.name === provider);
  return option && !option.available ? (option.reason ?? "Not available on this deployment.") : null;
}

export interface ProviderChoice {
  provider: Provider;
  setProvider: (provider: Provider) => void;
  size: string;
  setSize: (size: string) => void;
  options: ProviderOption[] | undefined;
}

/** The chosen provider: the first one this deployment can serve, once it has said which. */
export function useProviderChoice(): ProviderChoice {
  const [provider, setProvider] = useState<Provider>(defaultProvider);
  const [size, setSize] = useState("");
  const offered = useLoad(() => api.deployment(), []);
  const options = offered.data?.providers;
  useEffect(() => {
    if (options && unavailable(options, provider)) {
      const usable = options.find((option) => option.available);
      if (usable) setProvider(usable.name);
    }
  }, [options]);
  return { provider, setProvider, size, setSize, options };
}

export function ProviderFields({ id, choice }: { id: string; choice: ProviderChoice }) {
  const { provider, setProvider, size, setSize, options } = choice;
  return (
    <>
      <fieldset className="field">
        <legend>Where it runs</legend>
        <div className="choices">
          {PROVIDERS.map((option) => {
            const why = unavailable(options, option.value);
            return (
              <label key={option.value} className={`choice ${why ? "choice-disabled" : ""}`}>
                <input
                  type="radio"
                  name="provider"
                  value={option.value}
                  checked={provider === option.value}
                  disabled={why !== null}
                  onChange={() => setProvider(option.value)}
                  aria-describedby={`${id}-${option.value}-help`}
                />
                <span>
                  <strong>{option.label}</strong>
                  <span className="muted small block" id={`${id}-${option.value}-help`}>
                    {why ? `Not available here: ${why}` : option.help}
                  </span>
                </span>
              </label>
            );
          })}
        </div>
      </fieldset>
      {provider === "hetzner" && (
        <div className="field">
          <label htmlFor={`${id}-size`}>
            Server type <span className="muted">(optional)</span>
          </label>
          <input
            id={`${id}-size`}
            name="size"
            autoCapitalize="off"
            spellCheck={false}
            placeholder="e.g. cx22"
            value={size}
            onChange={(event) => setSize(event.target.value)}
            aria-describedby={`${id}-size-hint`}
          />
          <p className="hint" id={`${id}-size-hint`}>
            A Hetzner server type. Empty: the cheapest shared type that fits.
          </p>
        </div>
      )}
    </>
  );
}
