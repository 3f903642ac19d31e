// `llmserve init`: writes a commented llmserve.yaml from templates/, and prints a new master key to export.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, link, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parse, stringify } from 'yaml';
import { LlmserveError, ExitCode, usageError } from '../errors.js';
import { newKey } from './keys.js';
import { writeStdout } from '../util/output.js';
import { workingDir } from '../util/cwd.js';

/** Options of `init`. */
export interface InitOptions {
  model?: string;
  name?: string;
  out?: string;
  force?: boolean;
}

/** Side effects of `init`, with real defaults. */
export interface InitDeps {
  write?: (text: string) => void;
  cwd?: string;
  random?: (bytes: number) => Buffer;
  /** The template text (default: the one built into the bundle, else templates/llmserve.yaml). */
  template?: () => Promise<string>;
}

/** The file `init` writes without --out: the name `start` finds in its working directory. */
export const DEFAULT_OUT = 'llmserve.yaml';

// Replaced by the template's text in the single-file bundle (scripts/build-single.mjs); undeclared in a tsc build.
declare const __LLMSERVE_TEMPLATE__: string | undefined;

/** The text of templates/llmserve.yaml: built into the bundle, else read beside the build (dist/commands -> ../../). */
export async function readTemplate(): Promise<string> {
  if (typeof __LLMSERVE_TEMPLATE__ === 'string') return __LLMSERVE_TEMPLATE__;
  return readFile(new URL('../../templates/llmserve.yaml', import.meta.url), 'utf8');
}

/** One YAML scalar on one line (plain when that is safe, quoted otherwise). */
function scalar(value: string): string {
  const text = stringify(value, { lineWidth: 0 }).trimEnd();
  // Why: the yaml library writes some values (`---`, a document marker) as a block scalar over two lines, which cannot
  // follow `model:` on its line, and some plain where they do not read back (a trailing no-break space, pasted from a
  // web page, is trimmed on reading); a JSON string is a YAML double-quoted scalar, read back exactly.
  return text.includes('\n') || parse(text) !== value ? JSON.stringify(value) : text;
}

/**
 * Fills the template's `model:` line and, with a name, uncomments `served_model_name:`; every comment is kept.
 * Throws when the template lacks those lines: it is the single source and must keep them.
 */
export function fillTemplate(template: string, fill: { model?: string; name?: string }): string {
  const lines = template.split('\n');
  const replaceLine = (pattern: RegExp, make: (comment: string) => string): void => {
    const i = lines.findIndex((l) => pattern.test(l));
    if (i < 0) throw new Error(`templates/llmserve.yaml has no line matching ${pattern}`);
    const comment = /(\s+#.*)$/.exec(lines[i] ?? '')?.[1] ?? '';
    lines[i] = make(comment);
  };
  if (fill.model !== undefined) replaceLine(/^model:\s/, (c) => `model: ${scalar(fill.model!)}${c.replace(/# example: /, '# ')}`);
  if (fill.name !== undefined) replaceLine(/^# served_model_name:\s/, (c) => `served_model_name: ${scalar(fill.name!)}${c}`);
  const text = lines.join('\n');
  // What was filled in must read back exactly (paths with ':' or '#' are quoted by `scalar`).
  const doc = parse(text) as { model?: unknown; served_model_name?: unknown };
  if (fill.model !== undefined && doc.model !== fill.model) throw new Error('init: the model line did not read back as written');
  if (fill.name !== undefined && doc.served_model_name !== fill.name) throw new Error('init: the served_model_name line did not read back as written');
  return text;
}

const exists = async (p: string): Promise<boolean> => access(p, constants.F_OK).then(() => true, () => false);

/**
 * The `model:` to write for `--model`: a local path made absolute, since the config does not resolve `model`
 * against its own directory and a relative one would follow whoever's working directory runs `start`. Local means
 * starting with `.` or existing here; anything else (a hub id like `org/name`) is kept exactly as given.
 */
export async function modelForFile(model: string, cwd: string): Promise<string> {
  if (path.isAbsolute(model)) return model;
  const resolved = path.resolve(cwd, model);
  return model.startsWith('.') || (await exists(resolved)) ? resolved : model;
}

function refuseOverwrite(out: string): LlmserveError {
  return usageError(`${out} already exists; not overwriting it (pass --force to replace it, or --out FILE to write elsewhere)`);
}

/**
 * Writes `text` to `file` atomically: a temporary file beside it, then a rename (or a link, which never overwrites).
 * Nothing is left behind when it fails, the temporary file included; `write` is the file system's (a test double).
 */
export async function writeAtomic(
  file: string,
  text: string,
  overwrite: boolean,
  random: (bytes: number) => Buffer = randomBytes,
  write: typeof writeFile = writeFile,
): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.${random(4).toString('hex')}.tmp`);
  try {
    await write(tmp, text, { flag: 'wx', mode: 0o644 });
  } catch (err) {
    // A write that fails midway (a full disk) leaves a partial temporary file; EEXIST means it was never ours.
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') await unlink(tmp).catch(() => undefined);
    throw err;
  }
  try {
    if (overwrite) return await rename(tmp, file);
    try {
      await link(tmp, file); // fails with EEXIST if the file appeared meanwhile: never clobbers
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw refuseOverwrite(file);
      if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP' && code !== 'EXDEV') throw err;
      // A file system without hard links: checked just before, so a rename is the best left.
      if (await exists(file)) throw refuseOverwrite(file);
      return await rename(tmp, file);
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
}

/** Why the file could not be written, in words; the errno message would name the temporary file, not the user's. */
function writeProblem(dir: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'EACCES' || err.code === 'EPERM' || err.code === 'EROFS') {
    return `this user may not create files in ${dir} (${err.code}); give --out a file in a writable directory (nothing was written)`;
  }
  if (err.code === 'ENOSPC' || err.code === 'EDQUOT') return `no space left in ${dir} (${err.code}); free some, or write elsewhere with --out (nothing was written)`;
  return `${err.code ?? err.message} (nothing was written)`;
}

/** Runs `llmserve init`; resolves to 0 after writing the file and printing the key. */
export async function runInit(options: InitOptions, deps: InitDeps = {}): Promise<number> {
  const write = deps.write ?? writeStdout;
  const cwd = deps.cwd ?? workingDir();
  const shown = options.out ?? DEFAULT_OUT;
  const out = path.resolve(cwd, shown);
  if (options.model !== undefined && options.model.trim() === '') throw usageError('--model: expected a model directory or a hub id, got an empty string');
  if (options.name !== undefined && options.name.trim() === '') throw usageError('--name: expected the public model name, got an empty string');
  for (const [flag, value] of [['--model', options.model], ['--name', options.name]] as const) {
    // A line break or another control character is no path, hub id or model name: a pasting slip, said plainly.
    if (value !== undefined && /[\u0000-\u001f\u007f]/.test(value)) throw usageError(`${flag}: ${JSON.stringify(value)} holds a control character (a line break?); give the value on one line`);
  }
  if (shown.trim() === '') throw usageError(`--out: expected a file name, got an empty string; leave --out out for ${DEFAULT_OUT}`);

  const dir = path.dirname(out);
  const dirStat = await stat(dir).catch(() => null);
  if (dirStat === null) throw usageError(`--out ${shown}: the directory ${dir} does not exist; create it, or give --out a file in an existing directory`);
  if (!dirStat.isDirectory()) throw usageError(`--out ${shown}: ${dir} is a file, not a directory; give --out a file in a directory`);
  const existing = await stat(out).catch(() => null);
  if (existing?.isDirectory()) throw usageError(`--out ${shown}: is a directory; give a file name, such as ${path.join(shown, DEFAULT_OUT)}`);
  if (existing && options.force !== true) throw refuseOverwrite(shown);

  const template = await (deps.template ?? readTemplate)();
  const fill: { model?: string; name?: string } = {};
  if (options.model !== undefined) fill.model = await modelForFile(options.model, cwd);
  if (options.name !== undefined) fill.name = options.name;
  const text = fillTemplate(template, fill);
  try {
    await writeAtomic(out, text, options.force === true, deps.random);
  } catch (err) {
    if (err instanceof LlmserveError) throw err;
    throw usageError(`cannot write ${shown}: ${writeProblem(dir, err as NodeJS.ErrnoException)}`);
  }

  const key = newKey(deps.random);
  const config = shown.includes(' ') ? JSON.stringify(shown) : shown;
  write(
    [
      `Wrote ${shown}${options.model === undefined ? ' (model: is an example: edit it, or pass --model at start)' : fill.model !== options.model ? ` (model: ${fill.model}, the absolute form of ${options.model})` : ''}.`,
      '',
      'A new master key; it is not in the file and is shown only once. Export it where llmserve runs',
      '(or keep it in a secret store: the file reads it from LLMSERVE_MASTER_KEY):',
      '',
      `  export LLMSERVE_MASTER_KEY=${key}`,
      '',
      `Then: llmserve probe --config ${config}   (checks everything, starts nothing)`,
      `      llmserve start --config ${config}`,
      '',
    ].join('\n'),
  );
  return ExitCode.ok;
}
