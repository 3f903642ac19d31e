// `init`, `keys generate`, the template, the examples (configs load, manifests parse) and the package's file list.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse, parseAllDocuments } from 'yaml';
import { loadConfig, parseConfigText } from '../../src/config/index.js';
import { LlmserveError } from '../../src/errors.js';
import { fillTemplate, runInit, writeAtomic } from '../../src/commands/init.js';
import { keyDigestHex, newKey, runKeysGenerate } from '../../src/commands/keys.js';
import { tempDir } from '../helpers/fixtures.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const read = (...p: string[]) => readFileSync(path.join(root, ...p), 'utf8');
const template = read('templates', 'llmserve.yaml');
const KEY = 'sk-unit-test-key-0123456789abcdefghij';
const ORIGINAL_ARGS = ['--max-model-len', '16384', '--gpu-memory-utilization', '0.98', '--enable-prefix-caching', '--enforce-eager', '--trust-remote-code'];

/** Runs init in a temp dir with captured output; returns the output and the path written. */
async function init(options: Parameters<typeof runInit>[0], cwd?: string) {
  const dir = cwd ?? (await tempDir());
  let out = '';
  const code = await runInit(options, { cwd: dir, write: (t) => (out += t) });
  return { code, out, dir, file: path.join(dir, options.out ?? 'llmserve.yaml') };
}

function exportedKey(out: string): string {
  const m = /^ {2}export LLMSERVE_MASTER_KEY=(\S+)$/m.exec(out);
  assert.ok(m, `no export line in:\n${out}`);
  return m[1]!;
}

type Obj = Record<string, unknown>;
const obj = (v: unknown): Obj => {
  assert.ok(v !== null && typeof v === 'object' && !Array.isArray(v), `expected a mapping, got ${JSON.stringify(v)}`);
  return v as Obj;
};

test('the template with its example keys uncommented loads without a weak-key warning (no digest of a guessable key)', async () => {
  // Users uncomment examples as they are: a published example digest whose key can be guessed (it was
  // sha256("password")) would let anyone in.
  const uncommented = template.replace(/^(\s*)# ((?:keys:|  - name:|    key:|    key_sha256:).*)$/gm, '$1$2');
  assert.match(uncommented, /^ {6}key_sha256: [0-9a-f]{64}/m);
  const dir = await tempDir();
  writeFileSync(path.join(dir, 'llmserve.yaml'), uncommented);
  writeFileSync(path.join(dir, 'keys.yaml'), '[]\n');
  const config = await loadConfig({ config: 'llmserve.yaml' }, { env: { LLMSERVE_MASTER_KEY: KEY, ALICE_KEY: 'sk-alice-unit-0123456789abcdef' }, cwd: dir });
  assert.deepEqual(config.proxy.keys.map((k) => k.name), ['master', 'alice', 'batch-jobs']);
  assert.deepEqual(config.notes.filter((n) => /WARNING/.test(n)), []);
});

test('the template loads as is, with the original vLLM settings and the master key from the environment', async () => {
  const config = await loadConfig({ config: 'llmserve.yaml' }, { env: { LLMSERVE_MASTER_KEY: KEY }, cwd: path.join(root, 'templates') });
  assert.deepEqual(config.vllm.args, ORIGINAL_ARGS);
  assert.equal(config.configFormat, 'llmserve');
  assert.ok(config.secrets.values.includes(KEY));
  assert.match(template, /^ {2}master_key: os\.environ\/LLMSERVE_MASTER_KEY/m);
  // The probe directory is the default, not set: an explicit one would turn off the fallback to a temporary directory.
  assert.deepEqual([config.probes.dir, config.probes.dirExplicit], ['/etc/probe', false]);
});

test('fillTemplate sets model and name, keeps every comment, and quotes what YAML would misread', () => {
  const model = '/data/models/odd: name #1';
  const text = fillTemplate(template, { model, name: 'My Model: v1' });
  const doc = obj(parse(text));
  assert.equal(doc['model'], model);
  assert.equal(doc['served_model_name'], 'My Model: v1');
  const comments = (s: string) => s.split('\n').filter((l) => l.trimStart().startsWith('#')).length;
  assert.equal(comments(text), comments(template) - 1, 'only the served_model_name line is uncommented');
  assert.equal(fillTemplate(template, {}), template);
  assert.throws(() => fillTemplate('vllm: {}\n', { model: '/m' }), /no line matching/);
  // Values the yaml library would write as a block scalar over two lines (a document marker) stay on their line...
  // And values it would write plain that read back changed: a trailing no-break or em space (pasted from a page).
  for (const odd of ['---', '...', '--- x', '|', '>', '/models/qwen\u00a0', 'qwen\u2003', '\u00a0lead']) {
    const filled = obj(parse(fillTemplate(template, { model: odd, name: odd })));
    assert.equal(filled['model'], odd);
    assert.equal(filled['served_model_name'], odd);
  }
});

test('init writes a loadable, commented llmserve.yaml and prints a strong key that is not in the file', async () => {
  const { code, out, file } = await init({ model: '/models/qwen', name: 'qwen-chat' });
  assert.equal(code, 0);
  const text = readFileSync(file, 'utf8');
  const key = exportedKey(out);
  assert.match(key, /^sk-[A-Za-z0-9_-]{43}$/);
  assert.ok(!text.includes(key), 'the key must never be written into the file');
  assert.match(text, /^# llmserve configuration/);
  const config = await loadConfig({ config: file }, { env: { LLMSERVE_MASTER_KEY: key } });
  assert.equal(config.model, '/models/qwen');
  assert.equal(config.servedModelName, 'qwen-chat');
  assert.deepEqual(config.vllm.args, ORIGINAL_ARGS);
  assert.ok(config.secrets.values.includes(key));
  assert.ok(config.notes.every((n) => !/weak|short|placeholder/i.test(n)), config.notes.join('\n'));
  // Two runs, two different keys; no temporary file left beside the output.
  const again = await init({ out: 'other.yaml' }, path.dirname(file));
  assert.notEqual(exportedKey(again.out), key);
  assert.deepEqual(readdirSync(path.dirname(file)).sort(), ['llmserve.yaml', 'other.yaml']);
});

test('init writes a relative local --model as an absolute path, and a hub id as given', async () => {
  const parent = await tempDir();
  const dir = path.join(parent, 'work');
  mkdirSync(dir);
  mkdirSync(path.join(parent, 'model'));
  mkdirSync(path.join(dir, 'weights'));
  let n = 0;
  const written = async (model: string) => {
    const { file, out } = await init({ model, out: `init-${++n}.yaml` }, dir);
    return { model: obj(parse(readFileSync(file, 'utf8')))['model'], out };
  };
  const up = await written('../model');
  assert.equal(up.model, path.join(parent, 'model'));
  assert.match(up.out, /\(model: .*\/model, the absolute form of \.\.\/model\)/);
  assert.equal((await written('./weights')).model, path.join(dir, 'weights'));
  // Not starting with a dot, but there: a local directory too.
  assert.equal((await written('weights')).model, path.join(dir, 'weights'));
  // Starting with a dot, not there (yet): still a path, never a hub id.
  assert.equal((await written('./later')).model, path.join(dir, 'later'));
  const hub = await written('Qwen/Qwen2.5-0.5B-Instruct');
  assert.equal(hub.model, 'Qwen/Qwen2.5-0.5B-Instruct');
  assert.doesNotMatch(hub.out, /absolute form/);
  assert.equal((await written('/models/qwen')).model, '/models/qwen');
  // The file then loads to the same model whatever the working directory of start.
  const { file } = await init({ model: '../model', out: 'from-elsewhere.yaml' }, dir);
  const config = await loadConfig({ config: file }, { env: { LLMSERVE_MASTER_KEY: KEY }, cwd: '/' });
  assert.equal(config.model, path.join(parent, 'model'));
});

test('init refuses to overwrite without --force (exit 2) and replaces with it', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'llmserve.yaml');
  writeFileSync(file, 'mine: true\n');
  await assert.rejects(init({}, dir), (err: unknown) => {
    assert.ok(err instanceof LlmserveError);
    assert.equal(err.exitCode, 2);
    assert.match(err.message, /llmserve\.yaml already exists; not overwriting it \(pass --force/);
    return true;
  });
  assert.equal(readFileSync(file, 'utf8'), 'mine: true\n');
  const forced = await init({ force: true, model: '/m' }, dir);
  assert.equal(forced.code, 0);
  assert.equal(obj(parse(readFileSync(file, 'utf8')))['model'], '/m');
  assert.deepEqual(readdirSync(dir), ['llmserve.yaml']);
});

test('init: a missing directory, a directory as --out and empty values are usage errors', async () => {
  const dir = await tempDir();
  writeFileSync(path.join(dir, 'a-file'), '');
  for (const [options, message] of [
    [{ out: 'no/such/dir/llmserve.yaml' }, /the directory .* does not exist/],
    [{ out: 'a-file/llmserve.yaml' }, /a-file is a file, not a directory/],
    [{ out: '.' }, /is a directory/],
    [{ model: ' ' }, /--model: expected/],
    [{ name: '' }, /--name: expected/],
    [{ model: 'org/a\nb' }, /^--model: "org\/a\\nb" holds a control character \(a line break\?\); give the value on one line$/],
    [{ name: 'a\tb' }, /^--name: "a\\tb" holds a control character/],
    [{ out: '' }, /^--out: expected a file name, got an empty string; leave --out out for llmserve\.yaml$/],
  ] as const) {
    await assert.rejects(init(options, dir), (err: unknown) => err instanceof LlmserveError && err.exitCode === 2 && message.test(err.message));
  }
  assert.deepEqual(readdirSync(dir), ['a-file']);
});

test('writeAtomic never clobbers a file that appeared meanwhile (link, not rename)', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'x.yaml');
  writeFileSync(file, 'first\n');
  await assert.rejects(writeAtomic(file, 'second\n', false), /already exists/);
  assert.equal(readFileSync(file, 'utf8'), 'first\n');
  await writeAtomic(file, 'third\n', true);
  assert.equal(readFileSync(file, 'utf8'), 'third\n');
  assert.deepEqual(readdirSync(dir), ['x.yaml']);
});

test('writeAtomic leaves nothing behind when the write fails midway (a full disk), the temporary file included', async () => {
  const dir = await tempDir();
  const file = path.join(dir, 'llmserve.yaml');
  const fullDisk = (async (tmp: string, text: string) => {
    writeFileSync(tmp, text.slice(0, 10)); // part of it reached the disk
    throw Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  }) as unknown as typeof import('node:fs/promises').writeFile;
  await assert.rejects(writeAtomic(file, 'model: /m\nproxy: {}\n', false, undefined, fullDisk), /ENOSPC/);
  assert.deepEqual(readdirSync(dir), []);
});

test('keys generate: a new key, its SHA-256, and an entry that a config accepts', async () => {
  let out = '';
  await runKeysGenerate({ name: 'alice', json: true }, { write: (t) => (out += t) });
  const doc = JSON.parse(out) as { name: string; key: string; key_sha256: string };
  assert.equal(doc.name, 'alice');
  assert.match(doc.key, /^sk-[A-Za-z0-9_-]{43}$/);
  assert.equal(doc.key_sha256, createHash('sha256').update(doc.key).digest('hex'));
  assert.equal(keyDigestHex(doc.key), doc.key_sha256);

  let text = '';
  await runKeysGenerate({ name: 'batch-jobs' }, { write: (t) => (text += t), random: (n) => Buffer.alloc(n, 7) });
  const fixed = newKey((n) => Buffer.alloc(n, 7));
  assert.match(text, new RegExp(`^key {9}${fixed}$`, 'm'));
  // The indented block pastes into a config: the digest entry is accepted and matches the key.
  const block = text.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.slice(2)).join('\n');
  const settings = parseConfigText(`model: /m\n${block}\n`, 'pasted.yaml', {});
  assert.equal(settings.proxy.keys.entries[0]?.name, 'batch-jobs');
  assert.equal(settings.proxy.keys.entries[0]?.sha256.toString('hex'), keyDigestHex(fixed));
  assert.ok(!block.includes(fixed), 'the pasted entry holds only the digest');

  await assert.rejects(runKeysGenerate({ name: 'a b' }, { write: () => undefined }), (err: unknown) => err instanceof LlmserveError && err.exitCode === 2);
  // "master" names the master key: a second key by that name is refused by the config.
  await assert.rejects(runKeysGenerate({ name: 'master' }, { write: () => undefined }), (err: unknown) => err instanceof LlmserveError && err.exitCode === 2 && /"master" is the name of the master key/.test(err.message));
  // A name YAML would read as a number, a boolean or null is quoted in the entry, so that the pasted entry loads.
  for (const name of ['123', '1e3', '0x1F', 'true', 'null', 'alice']) {
    let printed = '';
    await runKeysGenerate({ name }, { write: (t) => (printed += t) });
    const pasted = printed.split('\n').filter((l) => l.startsWith('  ')).map((l) => l.slice(2)).join('\n');
    assert.equal(parseConfigText(`model: /m\n${pasted}\n`, 'pasted.yaml', {}).proxy.keys.entries[0]?.name, name, pasted);
    assert.equal(pasted.includes(`name: ${name}\n`), name === 'alice', 'only names YAML would misread are quoted');
  }
});

test('examples/openbayes: one start.sh that only runs llmserve start; the LiteLLM config loads; ports documented', async () => {
  const script = read('examples', 'openbayes', 'start.sh');
  const commands = script.split('\n').filter((l) => l.trim() !== '' && !l.trimStart().startsWith('#'));
  assert.equal(commands.length, 1, script);
  assert.match(commands[0]!, /^exec llmserve start /);
  const config = await loadConfig({ config: path.join(root, 'examples', 'openbayes', 'litellm.config.yaml'), model: '/input0/m' }, { env: { LLMSERVE_MASTER_KEY: KEY } });
  assert.equal(config.configFormat, 'litellm');
  assert.equal(config.servedModelName, 'DeepSeek-R1-Distill-Qwen-1.5B');
  assert.equal(config.vllm.port, 3000);
  const readme = read('examples', 'openbayes', 'README.md');
  for (const needle of ['8080', '**80**', 'OPENBAYES_SERVING_PRODUCTION', 'llmserve start']) assert.ok(readme.includes(needle), needle);
});

/** Every document of every manifest in examples/kubernetes, by kind. */
function kubernetesDocs(): Map<string, Obj> {
  const dir = path.join(root, 'examples', 'kubernetes');
  const byKind = new Map<string, Obj>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(path.join(dir, name), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${name}: ${doc.errors.join('; ')}`);
      const value = obj(doc.toJS());
      assert.equal(typeof value['apiVersion'], 'string', name);
      byKind.set(String(value['kind']), value);
    }
  }
  return byKind;
}

/** The llmserve.yaml held by the example ConfigMap. */
function kubernetesConfigText(): string {
  const cm = kubernetesDocs().get('ConfigMap');
  const text = obj(obj(cm)['data'])['llmserve.yaml'];
  assert.equal(typeof text, 'string');
  return text as string;
}

test('examples/kubernetes: Deployment + Service + ConfigMap, probes, grace period, Secret and tini agree with the config', async () => {
  const docs = kubernetesDocs();
  assert.deepEqual([...docs.keys()].sort(), ['ConfigMap', 'Deployment', 'Service']);
  const dir = await tempDir();
  const file = path.join(dir, 'llmserve.yaml');
  writeFileSync(file, kubernetesConfigText());
  const config = await loadConfig({ config: file }, { env: { LLMSERVE_MASTER_KEY: KEY } });
  assert.deepEqual(config.vllm.args, ORIGINAL_ARGS);

  const pod = obj(obj(obj(docs.get('Deployment'))['spec'])['template']);
  const podSpec = obj(pod['spec']);
  const containers = podSpec['containers'] as Obj[];
  assert.equal(containers.length, 1);
  const c = obj(containers[0]);
  const command = c['command'] as string[];
  assert.deepEqual(command.slice(0, 4), ['tini', '--', 'llmserve', 'start']);

  const env = c['env'] as Obj[];
  const keyEnv = obj(env.find((e) => e['name'] === 'LLMSERVE_MASTER_KEY'));
  const ref = obj(obj(keyEnv['valueFrom'])['secretKeyRef']);
  assert.equal(typeof ref['name'], 'string');
  assert.equal(typeof ref['key'], 'string');
  const configEnv = obj(env.find((e) => e['name'] === 'LLMSERVE_CONFIG'));
  const mount = (c['volumeMounts'] as Obj[]).find((m) => m['name'] === 'config');
  assert.equal(path.posix.join(String(obj(mount)['mountPath']), 'llmserve.yaml'), configEnv['value']);

  const ports = c['ports'] as Obj[];
  const http = obj(ports.find((p) => p['name'] === 'http'));
  assert.equal(http['containerPort'], config.proxy.port);
  assert.equal(config.proxy.port, 8080);

  const readiness = obj(obj(c['readinessProbe'])['httpGet']);
  assert.equal(readiness['path'], '/health/readiness');
  assert.ok(readiness['port'] === 'http' || readiness['port'] === 8080);
  const liveness = obj(obj(c['livenessProbe'])['exec']);
  assert.deepEqual((liveness['command'] as string[]).slice(0, 4), ['llmserve', 'check', '--timeout', '3']);
  const startup = obj(c['startupProbe']);
  const startupWindow = Number(startup['failureThreshold']) * Number(startup['periodSeconds']);
  assert.ok(startupWindow >= 30 * 60, `startupProbe allows ${startupWindow} s`);
  assert.ok(startupWindow >= config.timeouts.startup, 'the startup probe must outlast startup_timeout');

  // Kubernetes' SIGKILL must come after llmserve's own worst case: drain delay + drain timeout + stop grace (+1 s).
  const grace = Number(podSpec['terminationGracePeriodSeconds']);
  const needed = config.drain.delay + config.drain.timeout + config.timeouts.stop + 1;
  assert.ok(grace >= needed + 10, `terminationGracePeriodSeconds ${grace} < ${needed} + a margin`);
  assert.equal(obj(obj(c['resources'])['limits'])['nvidia.com/gpu'], 1);

  const svc = obj(obj(docs.get('Service'))['spec']);
  assert.deepEqual(svc['selector'], obj(obj(pod['metadata'])['labels']));
  assert.ok((svc['ports'] as Obj[]).some((p) => p['targetPort'] === 'http' || p['targetPort'] === 8080));
});

test('examples/docker: FROM the official vLLM image, Node and llmserve added, tini as the entrypoint', () => {
  const dockerfile = read('examples', 'docker', 'Dockerfile');
  const instructions = dockerfile.split('\n').filter((l) => /^[A-Z]+\s/.test(l));
  assert.ok(instructions.some((l) => /^ARG VLLM_IMAGE=vllm\/vllm-openai:/.test(l)));
  assert.ok(instructions.some((l) => l === 'FROM ${VLLM_IMAGE}'));
  assert.match(dockerfile, /COPY --from=node \/usr\/local\/bin\/node /);
  assert.match(dockerfile, /npm install -g --omit=dev \/tmp\/llmserve-\*\.tgz/);
  assert.match(dockerfile, /apt-get install -y --no-install-recommends tini/);
  const entrypoint = instructions.find((l) => l.startsWith('ENTRYPOINT '));
  assert.deepEqual(JSON.parse(entrypoint!.slice('ENTRYPOINT '.length)), ['tini', '--', 'llmserve']);
  const cmd = instructions.find((l) => l.startsWith('CMD '));
  assert.deepEqual(JSON.parse(cmd!.slice('CMD '.length)), ['start']);
  assert.ok(existsSync(path.join(root, 'examples', 'docker', 'README.md')));
});

test('examples/litellm-migration: before/after, and nothing changes for clients', () => {
  const readme = read('examples', 'litellm-migration', 'README.md');
  for (const needle of ['vllm.sh', 'start.sh', 'litellm.config.yaml', 'llmserve start', 'What changes for clients: nothing', 'x-litellm-api-key', '/health/readiness', 'OpenAI']) {
    assert.ok(readme.includes(needle), needle);
  }
});

test('package.json ships the bin, the build, the template and the examples, without sourcemaps or the single file', () => {
  const pkg = JSON.parse(read('package.json')) as { files: string[]; bin: Record<string, string>; scripts: Record<string, string> };
  assert.equal(pkg.bin['llmserve'], 'bin/llmserve.js');
  for (const entry of ['bin/llmserve.js', 'bin/package.json', 'dist/', 'templates/', 'examples/', 'README.md', '!dist/**/*.map', '!dist/llmserve.mjs']) assert.ok(pkg.files.includes(entry), entry);
  assert.match(pkg.scripts['build:single'] ?? '', /scripts\/build-single\.mjs/);
});

test('examples/kubernetes/multi-node: a LeaderWorkerSet whose leader is a Ray head for the group size and whose workers join it', async () => {
  const dir = path.join(root, 'examples', 'kubernetes', 'multi-node');
  const byKind = new Map<string, Obj>();
  for (const name of readdirSync(dir).filter((f) => f.endsWith('.yaml'))) {
    for (const doc of parseAllDocuments(readFileSync(path.join(dir, name), 'utf8'))) {
      assert.deepEqual(doc.errors, [], `${name}: ${doc.errors.join('; ')}`);
      const value = obj(doc.toJS());
      byKind.set(String(value['kind']), value);
    }
  }
  assert.deepEqual([...byKind.keys()].sort(), ['ConfigMap', 'LeaderWorkerSet', 'Service']);
  const lws = obj(byKind.get('LeaderWorkerSet'));
  assert.equal(lws['apiVersion'], 'leaderworkerset.x-k8s.io/v1');
  const template = obj(obj(lws['spec'])['leaderWorkerTemplate']);
  const size = Number(template['size']);
  const container = (t: unknown) => obj((obj(obj(t)['spec'])['containers'] as Obj[])[0]);
  const leader = container(template['leaderTemplate']);
  const worker = container(template['workerTemplate']);
  const flag = (cmd: string[], name: string) => cmd[cmd.indexOf(name) + 1];

  const lead = leader['command'] as string[];
  assert.deepEqual(lead.slice(0, 4), ['tini', '--', 'llmserve', 'start']);
  assert.equal(flag(lead, '--role'), 'head');
  assert.equal(Number(flag(lead, '--nodes')), size, '--nodes counts every pod of the group');
  const work = worker['command'] as string[];
  assert.deepEqual(work.slice(0, 4), ['tini', '--', 'llmserve', 'start']);
  assert.equal(flag(work, '--role'), 'worker');
  assert.equal(flag(work, '--head'), '$(LWS_LEADER_ADDRESS):6379');

  // The leader's key from a Secret; a worker never reads the proxy's section, so it is given no key at all (the
  // config loads without one); the config from the ConfigMap, loadable as a head and as a worker.
  const envOf = (c: Obj) => c['env'] as Obj[];
  assert.equal(typeof obj(obj(obj(envOf(leader).find((e) => e['name'] === 'LLMSERVE_MASTER_KEY'))['valueFrom'])['secretKeyRef'])['name'], 'string');
  assert.equal(envOf(worker).find((e) => e['name'] === 'LLMSERVE_MASTER_KEY'), undefined, 'a key on a pod that needs none');
  const text = obj(obj(byKind.get('ConfigMap'))['data'])['llmserve.yaml'] as string;
  const tmp = await tempDir();
  writeFileSync(path.join(tmp, 'llmserve.yaml'), text);
  const head = await loadConfig({ config: path.join(tmp, 'llmserve.yaml'), role: 'head', nodes: String(size) }, { env: { LLMSERVE_MASTER_KEY: KEY } });
  assert.deepEqual(head.cluster, { role: 'head', nodes: size, head: null });
  const joined = await loadConfig({ config: path.join(tmp, 'llmserve.yaml'), role: 'worker', head: '10.0.0.1:6379' }, { env: {} });
  assert.equal(joined.cluster.role, 'worker');

  // Leader: HTTP probes and the drain budget as in the single-node example; worker: probe files.
  assert.equal(obj(obj(leader['readinessProbe'])['httpGet'])['path'], '/health/readiness');
  assert.deepEqual((obj(obj(leader['livenessProbe'])['exec'])['command'] as string[]).slice(0, 2), ['llmserve', 'check']);
  const startup = obj(leader['startupProbe']);
  assert.ok(Number(startup['failureThreshold']) * Number(startup['periodSeconds']) >= head.timeouts.startup);
  const leaderSpec = obj(obj(template['leaderTemplate'])['spec']);
  // A head's worst case (supervisor.ts shutdown, ray.ts stopRay): the drain (+1 s), vLLM and the proxy, then `ray stop`
  // and Ray's group, each up to stop_timeout; a worker's: it stays while the head drains (at most the drain), then
  // `ray stop` and Ray's group.
  const stop = head.timeouts.stop;
  const leaderGrace = Number(leaderSpec['terminationGracePeriodSeconds']);
  assert.ok(leaderGrace >= head.drain.delay + head.drain.timeout + 1 + 3 * stop + 10, `leader terminationGracePeriodSeconds ${leaderGrace} < its worst case + a margin`);
  const workerSpec = obj(obj(template['workerTemplate'])['spec']);
  const workerGrace = Number(workerSpec['terminationGracePeriodSeconds']);
  assert.ok(workerGrace >= head.drain.delay + head.drain.timeout + 2 * stop + 10, `worker terminationGracePeriodSeconds ${workerGrace} < its worst case + a margin`);
  assert.match(JSON.stringify(worker['readinessProbe']), /not-ready/);
  assert.match(JSON.stringify(worker['livenessProbe']), /not-healthy/);
  const svc = obj(obj(byKind.get('Service'))['spec']);
  assert.equal(obj(svc['selector'])['role'], 'leader');
});
