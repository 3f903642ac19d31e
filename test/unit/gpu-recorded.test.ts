// Real nvidia-smi output, recorded on a GPU machine (test/fixtures/nvidia-smi/record.py): llmserve's exact queries
// parse as expected, and the fake nvidia-smi the other tests use prints what the real one printed.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { COMPUTE_APPS_QUERY_ARGS, GPU_QUERY_ARGS, detectGpus, parseComputeApps, type RunCommand } from '../../src/gpu/index.js';
import { fixturePath, runCli, tempDir } from '../helpers/fixtures.js';

const dir = fixturePath('nvidia-smi');
const fakeSmi = fixturePath('bin', 'nvidia-smi');

interface Run {
  args: string[];
  exitCode?: number;
  stdout?: string;
  stderr?: string;
  error?: string;
}
interface Recording {
  gpu: Run;
  gpuWithHeaderAndUnits: Run;
  gpuMoreFields: Run;
  gpuInvalidField: Run;
  appsIdle: Run;
  list: Run;
  version: Run;
  holder: { pid: number; ready: boolean };
  appsHeld?: Run;
  appsHeldWithHeader?: Run;
  appsAfterKill?: { msAfterKill: number; stdout: string | null }[];
}

const recordings = fs
  .readdirSync(dir)
  .filter((f) => /^recorded-.*\.json$/.test(f))
  .map((f) => ({ file: f, rec: JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as Recording }));

/** Runs the fake nvidia-smi with a recorded command's arguments, configured like the recorded machine. */
const fake = (args: string[], env: Record<string, string>) => runCli(fakeSmi, args.slice(1), env);

/** UUIDs differ from machine to machine (and the fake makes up its own). */
const sameShape = (text: string) => text.replace(/GPU-[0-9a-f-]{36}/g, 'GPU-<uuid>');

describe('recorded nvidia-smi output', () => {
  it('has at least one recording, made with the GPU query llmserve runs', () => {
    assert.ok(recordings.length > 0, `no recorded-*.json in ${dir}`);
    for (const { file, rec } of recordings) {
      assert.deepEqual(rec.gpu.args, ['nvidia-smi', ...GPU_QUERY_ARGS], `${file}: recorded with another GPU query; record it again`);
      assert.deepEqual(rec.appsIdle.args, ['nvidia-smi', ...COMPUTE_APPS_QUERY_ARGS], `${file}: recorded with another compute-apps query`);
      assert.equal(rec.gpu.exitCode, 0, `${file}: ${rec.gpu.error ?? rec.gpu.stdout}`);
    }
  });

  for (const { file, rec } of recordings) {
    const first = (rec.gpu.stdout ?? '').split('\n')[0]!.split(', ');
    const [name, memory] = [first[2]!, first[3]!];

    it(`${file}: the GPU query gives every GPU, none unparsed`, async () => {
      const replay: RunCommand = async (command, args) => {
        assert.deepEqual([command, ...args], rec.gpu.args);
        return { exitCode: rec.gpu.exitCode ?? null, stdout: rec.gpu.stdout ?? '', stderr: rec.gpu.stderr ?? '', notFound: false };
      };
      const { inventory } = await detectGpus({ run: replay, env: {} });
      const lines = (rec.gpu.stdout ?? '').trim().split('\n');
      assert.equal(inventory.source, 'nvidia-smi');
      assert.deepEqual(inventory.unparsed, []);
      assert.equal(inventory.gpus.length, lines.length);
      assert.deepEqual(inventory.gpus[0], { index: 0, uuid: first[1], name, memoryMiB: Number(memory) });
    });

    it(`${file}: compute apps parse to the process that held GPU memory, and to none when idle`, () => {
      assert.deepEqual(parseComputeApps(rec.appsIdle.stdout ?? ''), []);
      assert.ok(rec.holder.ready && rec.appsHeld, 'the recording has no process holding GPU memory');
      const apps = parseComputeApps(rec.appsHeld.stdout ?? '');
      assert.equal(apps.length, 1);
      assert.equal(apps[0]!.pid, rec.holder.pid);
      assert.ok(apps[0]!.usedMiB !== null && apps[0]!.usedMiB >= 1024, `1 GiB held, ${apps[0]!.usedMiB} MiB listed`);
      // Killed, the process leaves the list: what llmserve waits for before starting a new vLLM.
      const last = rec.appsAfterKill?.at(-1);
      assert.ok(last !== undefined && !parseComputeApps(last.stdout ?? '').some((a) => a.pid === rec.holder.pid), 'still listed after the kill');
    });

    it(`${file}: the fake nvidia-smi prints what the real one printed`, async () => {
      const lines = (rec.gpu.stdout ?? '').trim().split('\n');
      const env = { FAKE_NVIDIA_SMI_GPUS: String(lines.length), FAKE_NVIDIA_SMI_NAME: name, FAKE_NVIDIA_SMI_MEMORY_MIB: memory };
      for (const key of ['gpu', 'gpuWithHeaderAndUnits', 'gpuInvalidField', 'appsIdle', 'list'] as const) {
        const r = await fake(rec[key].args, env);
        assert.equal(r.code, rec[key].exitCode, key);
        assert.equal(sameShape(r.stdout), sameShape(rec[key].stdout ?? ''), key);
      }
      // Other fields: the same columns, each numeric where the real one is (values such as the bus id differ).
      const more = await fake(rec.gpuMoreFields.args, env);
      const real = (rec.gpuMoreFields.stdout ?? '').trim().split(', ');
      const mine = more.stdout.trim().split(', ');
      assert.equal(mine.length, real.length);
      real.forEach((v, i) => assert.equal(/^\d+$/.test(mine[i]!), /^\d+$/.test(v), `column ${i}: ${mine[i]} against ${v}`));
      assert.match((await fake(rec.version.args, env)).stdout, new RegExp(`^${(rec.version.stdout ?? '').split('\n')[0]!.replace(/[\d.]+$/, '[\\d.]+')}`));
      // Compute apps, with the holder's line given to the fake.
      const held = rec.appsHeld!.stdout ?? '';
      const appsFile = path.join(await tempDir('llmserve-smi-'), 'apps.csv');
      fs.writeFileSync(appsFile, held);
      for (const run of [rec.appsHeld!, rec.appsHeldWithHeader!]) {
        const r = await fake(run.args, { ...env, FAKE_NVIDIA_SMI_APPS_FILE: appsFile });
        assert.equal(r.stdout, run.stdout, run.args.join(' '));
      }
      fs.rmSync(path.dirname(appsFile), { recursive: true, force: true });
    });
  }
});
