// Lingering close: a refusal sent before the request's body was read closes the connection once the client has sent
// that body (or after a bound), as nginx does, so that the client reads the refusal instead of a reset.
import type { ServerResponse } from 'node:http';

/** The longest the rest of a refused request's body is read and dropped before the connection is closed anyway. */
export const LINGER_MS = 30_000;

/**
 * Makes the connection of `res`, which answers with `Connection: close` a request whose body is not read whole, close
 * only once that body has arrived (read and dropped), at most `lingerMs` later. Why: Node closes the socket as soon as
 * such an answer is written; the kernel then resets a connection whose received bytes were never read, and a client
 * still writing its body (a 64 MiB upload refused with 413, undici's fetch and OpenAI's JS SDK) gets EPIPE, never
 * reads the answer, says "Connection error." and uploads it all again on each retry. Node's server calls the socket's
 * destroySoon() at that point (its resOnFinish, for a response that is the connection's last): that one call is
 * replaced, on this socket only.
 */
export function lingerAfterAnswer(res: ServerResponse, lingerMs = LINGER_MS): void {
  const req = res.req;
  const socket = res.socket;
  if (req === undefined || req.complete || socket === null) return;
  socket.destroySoon = function lingeringDestroySoon(this: typeof socket) {
    // Our side is done: the FIN follows the answer, which the client reads once it has sent its body.
    this.end();
    const done = (): void => {
      clearTimeout(timer);
      this.destroy();
    };
    const timer = setTimeout(done, lingerMs);
    this.once('close', () => clearTimeout(timer));
    req.once('end', done);
    // The body's bytes are parsed and dropped (a refused request's reader may have paused it).
    req.resume();
  };
}
