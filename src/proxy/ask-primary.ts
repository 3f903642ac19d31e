// A cluster worker's question to the primary, answered by id, with the worker's own answer when the primary is late.

/** Questions of one kind: `ask` sends one (by its id) and resolves with the answer or the fallback; `answer` settles one. */
export interface PrimaryAsker<A> {
  ask(fallback: () => A): Promise<A>;
  answer(id: number, value: A): void;
}

/** Builds the asker; `send` sends the question with its id, `timeoutMs` bounds each wait. */
export function primaryAsker<A>(send: (id: number) => void, timeoutMs: number): PrimaryAsker<A> {
  let next = 0;
  const pending = new Map<number, (value: A) => void>();
  return {
    ask(fallback) {
      return new Promise((resolve) => {
        const id = ++next;
        const settle = (value: A) => {
          clearTimeout(timer);
          pending.delete(id);
          resolve(value);
        };
        const timer = setTimeout(() => settle(fallback()), timeoutMs);
        pending.set(id, settle);
        send(id);
      });
    },
    answer(id, value) {
      pending.get(id)?.(value);
    },
  };
}
