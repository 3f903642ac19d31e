// Types for free-port.mjs (plain JavaScript, so that the bench imports it without the TypeScript loader).

/** A port that was free on 127.0.0.1 a moment ago and is claimed for this process (free-port.mjs says how). */
export function freePort(): Promise<number>;

/** Claims `port` for this process; false when another process holds its claim. */
export function claimPort(port: number): boolean;
