// Kubernetes service links: a Service named `llmserve` puts LLMSERVE_PORT=tcp://10.0.0.1:80 into every pod's environment.

/**
 * True when a `*_PORT` variable holds a Kubernetes service link (`tcp://HOST:PORT`), not a port. Why: with service
 * links on (the default), a Service named `llmserve` (or `llmserve-backend`) sets LLMSERVE_PORT (or
 * LLMSERVE_BACKEND_PORT) that way in every pod started after it, which would fail every start and every `check` from
 * the next rollout on: a crash loop, for a variable nobody set.
 */
export function isServiceLink(name: string, value: string): boolean {
  return name.endsWith('_PORT') && /^(?:tcp|udp|sctp):\/\/[^\s/]+:\d+$/i.test(value);
}

/** Notes for the given variables that hold a service link, which llmserve ignores. */
export function serviceLinkNotes(env: NodeJS.ProcessEnv, names: readonly string[]): string[] {
  return names
    .filter((name) => env[name] !== undefined && isServiceLink(name, env[name]!))
    .map((name) => {
      const service = name.slice(0, -'_PORT'.length).toLowerCase().replace(/_/g, '-');
      return `${name}=${env[name]} is the link Kubernetes makes for a Service named ${service}, not a port: ignored (set enableServiceLinks: false in the pod spec to keep such variables out)`;
    });
}
