// The Node flags the proxy process runs with, so that its memory does not depend on which Node major runs it.

/**
 * V8's young generation for the proxy: semi-spaces of at most 16 MB, Node 20's and 22's default. Node 24 lets them
 * grow to 64 MB, which took 5,000 open streams from about 310 MB of RSS (proxy primary and two workers) to about
 * 440, over the 400 MB budget (docs/performance.md); with this flag, Node 24 measured 371-393 MB.
 */
export const PROXY_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=16'];

/**
 * The flags to put before the proxy's script: ours, less any the user already gives Node (in NODE_OPTIONS, or as a
 * flag of the Node that runs llmserve), since the user's choice wins.
 */
export function proxyNodeFlags(execArgv: readonly string[], nodeOptions: string | undefined): string[] {
  // V8 accepts its flags with dashes or underscores.
  const theirs = [...execArgv, ...(nodeOptions ?? '').split(/\s+/)].map((arg) => arg.replace(/_/g, '-').split('=')[0]);
  return PROXY_NODE_FLAGS.filter((flag) => !theirs.includes(flag.split('=')[0]!));
}
