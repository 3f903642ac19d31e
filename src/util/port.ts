// Is a TCP port free? Checked before starting vLLM, which binds with SO_REUSEPORT and would not fail itself.
import net from 'node:net';

/** Resolves true when `host:port` can be bound right now. */
export async function isPortFree(port: number, host: string): Promise<boolean> {
  return (await portBindError(port, host)) === null;
}

/** Resolves null when `host:port` can be bound right now, else the errno code of the failed listen (EADDRINUSE, EACCES, ...). */
export function portBindError(port: number, host: string): Promise<string | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? err.message));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(null)));
  });
}
