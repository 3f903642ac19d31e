// A fixed-size buffer of the last lines a child printed, for failure reports.

/** Keeps the last `size` lines pushed. */
export class LineRing {
  private readonly lines: string[] = [];
  constructor(private readonly size: number) {}

  push(line: string): void {
    this.lines.push(line);
    if (this.lines.length > this.size) this.lines.shift();
  }

  toArray(): string[] {
    return [...this.lines];
  }

  clear(): void {
    this.lines.length = 0;
  }
}
