// nvidia-smi parsing, CUDA_VISIBLE_DEVICES, detection fallbacks and the tensor-parallel choice.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseGpuCsv, parseComputeApps, selectVisible, detectGpus, chooseTensorParallel, headsFit, gpuSourceText, GPU_QUERY_ARGS, type RunCommand, type Gpu } from '../../src/gpu/index.js';
import { LlmserveError } from '../../src/errors.js';

const line = (i: number) => `${i}, GPU-${String(i).repeat(8)}-1111-2222-3333-444444444444, NVIDIA H100 80GB HBM3, 81559`;
const eight = Array.from({ length: 8 }, (_, i) => line(i)).join('\n') + '\n';

const fakeRun = (result: Partial<Awaited<ReturnType<RunCommand>>>, seen: string[][] = []): RunCommand => async (file, args) => {
  seen.push([file, ...args]);
  return { exitCode: 0, stdout: '', stderr: '', notFound: false, ...result };
};

test('parses 0, 1 and 8 GPUs', () => {
  assert.deepEqual(parseGpuCsv(''), { gpus: [], unparsed: [] });
  const one = parseGpuCsv(line(0));
  assert.deepEqual(one.gpus, [{ index: 0, uuid: 'GPU-00000000-1111-2222-3333-444444444444', name: 'NVIDIA H100 80GB HBM3', memoryMiB: 81559 }]);
  const all = parseGpuCsv(eight);
  assert.equal(all.gpus.length, 8);
  assert.deepEqual(all.gpus.map((g) => g.index), [0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(all.unparsed, []);
});

test('memory [N/A] is unknown, not a crash; garbage lines are kept as unparsed', () => {
  const parsed = parseGpuCsv('0, MIG-abc, NVIDIA A100 MIG 1g.10gb, [N/A]\nNo devices were found\n');
  assert.equal(parsed.gpus[0]?.memoryMiB, null);
  assert.deepEqual(parsed.unparsed, ['No devices were found']);
  const garbage = parseGpuCsv('%%% not csv at all\nfoo, bar\n');
  assert.equal(garbage.gpus.length, 0);
  assert.equal(garbage.unparsed.length, 2);
});

test('a GPU whose fields report an error (ERR!, [GPU requires reset]) is listed, and its line kept to be shown as it came', () => {
  const text = `${line(0)}\n1, GPU-11111111-1111-2222-3333-444444444444, NVIDIA H100 80GB HBM3, [GPU requires reset]\n2, GPU-22222222-1111-2222-3333-444444444444, ERR!, ERR!\n3, MIG-abc, NVIDIA A100 MIG 1g.10gb, [Not Supported]\n`;
  const parsed = parseGpuCsv(text);
  assert.deepEqual(parsed.gpus.map((g) => [g.index, g.memoryMiB]), [[0, 81559], [1, null], [2, null], [3, null]]);
  assert.deepEqual(parsed.unparsed, ['1, GPU-11111111-1111-2222-3333-444444444444, NVIDIA H100 80GB HBM3, [GPU requires reset]', '2, GPU-22222222-1111-2222-3333-444444444444, ERR!, ERR!']);
});

test('compute-apps parsing', () => {
  assert.deepEqual(parseComputeApps('1234, 70000\n5678, [N/A]\n\n'), [
    { pid: 1234, usedMiB: 70000 },
    { pid: 5678, usedMiB: null },
  ]);
});

const gpus: Gpu[] = parseGpuCsv(Array.from({ length: 4 }, (_, i) => line(i)).join('\n')).gpus;

test('CUDA_VISIBLE_DEVICES: unset, indices, uuids, empty, -1, none, invalid entry', () => {
  assert.equal(selectVisible(gpus, undefined).gpus.length, 4);
  assert.deepEqual(selectVisible(gpus, '2,0').gpus.map((g) => g.index), [2, 0]);
  assert.deepEqual(selectVisible(gpus, 'GPU-33333333').gpus.map((g) => g.index), [3]);
  for (const none of ['', '-1', 'none', ' NONE ']) assert.equal(selectVisible(gpus, none).gpus.length, 0, none);
  const invalid = selectVisible(gpus, '1,9,2');
  assert.deepEqual(invalid.gpus.map((g) => g.index), [1]);
  assert.match(invalid.warnings[0] ?? '', /"9" matches no GPU/);
  assert.equal(selectVisible(gpus, 'MIG-aaaa').gpus.length, 1);
});

// What vLLM's PyTorch (torch/cuda/__init__.py, _parse_visible_devices) says CUDA does with the variable.
test('CUDA_VISIBLE_DEVICES is read as CUDA reads it: a repeat hides every GPU, the first entry sets the kind, leading digits', () => {
  const indices = (value: string) => selectVisible(gpus, value).gpus.map((g) => g.index);
  for (const repeated of ['0,0,1', '1,2,1', 'GPU-00000000,GPU-0000', '2, 2']) {
    const r = selectVisible(gpus, repeated);
    assert.deepEqual(r.gpus, [], repeated);
    assert.match(r.warnings[0] ?? '', /names GPU \d twice, and CUDA then makes no GPU visible at all: list each GPU once$/, repeated);
  }
  // A repeat after the entry that ends the list is never read.
  assert.deepEqual(indices('1,9,1'), [1]);
  // Indices, then a UUID: the list ends there; UUIDs, then an index: the same.
  const mixed = selectVisible(gpus, '2,GPU-33333333');
  assert.deepEqual(mixed.gpus.map((g) => g.index), [2]);
  assert.equal(mixed.warnings[0], 'CUDA_VISIBLE_DEVICES entry "GPU-33333333" is a UUID in a list of indices; CUDA ignores it and every entry after it');
  const mixed2 = selectVisible(gpus, 'GPU-33333333,1');
  assert.deepEqual(mixed2.gpus.map((g) => g.index), [3]);
  assert.equal(mixed2.warnings[0], 'CUDA_VISIBLE_DEVICES entry "1" is not a GPU- UUID like the list\'s first entry; CUDA ignores it and every entry after it');
  // strtoul: the leading digits count, and the entry says so.
  const digits = selectVisible(gpus, '1gpu,+2');
  assert.deepEqual(digits.gpus.map((g) => g.index), [1, 2]);
  assert.deepEqual(digits.warnings, ['CUDA_VISIBLE_DEVICES entry "1gpu" is read as GPU 1: CUDA takes only its leading digits']);
  assert.match(selectVisible(gpus, '0,x,1').warnings[0] ?? '', /"x" is not a GPU index; CUDA ignores it/);
  // A UUID prefix that begins several GPUs' UUIDs picks none of them, and the list ends there.
  const prefix = selectVisible(gpus, 'GPU-1111,GPU-');
  assert.deepEqual(prefix.gpus.map((g) => g.index), [1]);
  assert.match(prefix.warnings[0] ?? '', /"GPU-" begins the UUIDs of 4 GPUs; CUDA ignores it/);
});

test('detectGpus runs the exact query and applies CUDA_VISIBLE_DEVICES', async () => {
  const seen: string[][] = [];
  const { inventory, selection } = await detectGpus({ run: fakeRun({ stdout: eight }, seen), env: { CUDA_VISIBLE_DEVICES: '0' } });
  assert.deepEqual(seen[0], ['nvidia-smi', ...GPU_QUERY_ARGS]);
  assert.deepEqual(GPU_QUERY_ARGS, ['--query-gpu=index,uuid,name,memory.total', '--format=csv,noheader,nounits']);
  assert.equal(inventory.gpus.length, 8);
  assert.equal(selection.gpus.length, 1);
});

test('a failing nvidia-smi is an error quoting its output; a missing one falls back', async () => {
  const msg = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.";
  await assert.rejects(detectGpus({ run: fakeRun({ exitCode: 9, stdout: msg }), env: {} }), (err: unknown) => {
    assert.ok(err instanceof LlmserveError);
    assert.equal(err.code, 'GPU_QUERY');
    assert.equal(err.exitCode, 2);
    assert.ok(err.message.includes(msg));
    return true;
  });
  const fallback = await detectGpus({ run: fakeRun({ notFound: true, exitCode: null }), fallback: async () => [{ index: 0, uuid: '', name: 'NVIDIA T4', memoryMiB: 15360 }], env: {} });
  assert.equal(fallback.inventory.source, 'systeminformation');
  assert.equal(fallback.selection.gpus.length, 1);
  const none = await detectGpus({ run: fakeRun({ notFound: true, exitCode: null }), fallback: async () => [], env: {} });
  assert.equal(none.inventory.source, 'none');
  // start's "GPUs: none [...]" and probe's GPU row say what was tried, not "from none".
  assert.equal(gpuSourceText(none.inventory.source), 'nvidia-smi not found, and the system lists no NVIDIA GPU');
  assert.equal(gpuSourceText(fallback.inventory.source), 'from systeminformation');
});

test('an nvidia-smi that timed out says so, not "exit signal"', async () => {
  await assert.rejects(detectGpus({ run: fakeRun({ exitCode: null, timedOut: true }), env: {} }), (err: unknown) => {
    assert.ok(err instanceof LlmserveError);
    assert.equal(err.code, 'GPU_QUERY');
    assert.match(err.message, /^nvidia-smi did not answer within 15 s \(killed; a GPU driver in trouble hangs it\)$/);
    return true;
  });
});

test('an nvidia-smi that cannot be run (not executable) says so', async () => {
  await assert.rejects(detectGpus({ run: fakeRun({ exitCode: null, spawnError: 'EACCES' }), env: {} }), (err: unknown) => {
    assert.ok(err instanceof LlmserveError);
    assert.match(err.message, /^nvidia-smi could not be run \(EACCES\)$/);
    return true;
  });
});

test('tensor-parallel: auto = GPU count, reduced to a power of two dividing the heads, explicit kept', () => {
  assert.equal(chooseTensorParallel('auto', 2, 12).size, 2);
  assert.equal(chooseTensorParallel('auto', 8, 64).size, 8);
  assert.equal(chooseTensorParallel('auto', 1, null).size, 1);
  const reduced = chooseTensorParallel('auto', 8, 12);
  assert.equal(reduced.size, 4);
  assert.equal(reduced.reduced, true);
  assert.match(reduced.reason, /12 attention heads do not split over 8/);
  assert.equal(chooseTensorParallel('auto', 3, 14).size, 2);
  assert.equal(chooseTensorParallel('auto', 6, 28).size, 4);
  assert.equal(chooseTensorParallel(4, 0, null).size, 4);
  assert.throws(() => chooseTensorParallel('auto', 0, 12), (err: unknown) => err instanceof LlmserveError && err.code === 'NO_GPU' && err.exitCode === 2);
  // Grouped-query attention: vLLM splits the key-value heads (kv % tp) or replicates them (tp % kv); 40 attention and
  // 10 key-value heads (Phi-3-medium) do not split over 4 GPUs although the attention heads do.
  const gqa = chooseTensorParallel('auto', 4, 40, 10);
  assert.deepEqual([gqa.size, gqa.reduced], [2, true]);
  assert.match(gqa.reason, /the model's 40 attention heads and 10 key-value heads do not split over 4: using 2/);
  assert.equal(chooseTensorParallel('auto', 8, 32, 8).size, 8);
  assert.equal(chooseTensorParallel('auto', 8, 64, 2).size, 8, 'two key-value heads replicated over 8 GPUs');
  assert.equal(chooseTensorParallel('auto', 8, 40, 8).size, 8, 'replicated... or split: 8 % 8');
  assert.match(chooseTensorParallel('auto', 2, 12, 2).reason, /^2 visible GPUs \(12 attention heads and 2 key-value heads split evenly\)$/);
  // MIG instances: one per process, so auto is 1 (reduced: it is warned about), explicit kept.
  const mig = chooseTensorParallel('auto', 2, 32, 8, true);
  assert.deepEqual([mig.size, mig.reduced], [1, true]);
  assert.match(mig.reason, /^2 visible GPUs are MIG instances, and CUDA lets one process use only one MIG instance: using 1/);
  assert.deepEqual(chooseTensorParallel('auto', 1, 32, 8, true), { size: 1, reason: '1 visible GPU (32 attention heads and 8 key-value heads split evenly)', reduced: false });
  assert.equal(chooseTensorParallel(2, 2, 32, 8, true).size, 2);
  assert.equal(headsFit(4, 40, 10), false);
  assert.equal(headsFit(5, 40, 10), true);
  assert.equal(headsFit(4, 40, null), true);
});
