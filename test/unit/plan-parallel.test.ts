// The plan's tensor-parallel size next to data and pipeline parallelism given in vllm.args, and explicit sizes
// that vLLM would refuse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { loadConfig, type CliOptions } from '../../src/config/index.js';
import type { RunCommand } from '../../src/gpu/index.js';
import { otherParallelism } from '../../src/engine/parallel-args.js';
import { makePlan, type Plan } from '../../src/plan.js';
import { load } from '../helpers/config.js';
import { makeModelDir, tempDir } from '../helpers/fixtures.js';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const KEY = 'sk-plan-parallel-KEY-0a1b2c3d4e5f6789';
const smi = (count: number): RunCommand => async () => ({
  exitCode: 0,
  stdout: Array.from({ length: count }, (_, i) => `${i}, GPU-0000000${i}-1111-2222-3333-444444444444, NVIDIA H100 80GB HBM3, 81559`).join('\n') + '\n',
  stderr: '',
  notFound: false,
});

async function plan(cli: CliOptions, gpus: number): Promise<Plan> {
  const env = { LLMSERVE_MASTER_KEY: KEY };
  return makePlan(await loadConfig(cli, { env }), { run: smi(gpus), env });
}

test('otherParallelism reads -dp/-pp in both forms, 1 otherwise', () => {
  assert.deepEqual(otherParallelism([]), { dataParallel: 1, pipelineParallel: 1 });
  assert.deepEqual(otherParallelism(['--data-parallel-size', '2', '--pipeline-parallel-size=3']), { dataParallel: 2, pipelineParallel: 3 });
  assert.deepEqual(otherParallelism(['-dp', '4', '-pp=2', '--max-model-len', '4096']), { dataParallel: 4, pipelineParallel: 2 });
  assert.deepEqual(otherParallelism(['--data-parallel-size', 'x']), { dataParallel: 1, pipelineParallel: 1 });
  // Across nodes: the ranks on this node (-dpl), or 1 when they are not given.
  assert.deepEqual(otherParallelism(['-dp', '8', '-dpl', '2', '-dpa', '10.0.0.1']), { dataParallel: 2, pipelineParallel: 1 });
  assert.deepEqual(otherParallelism(['-dp', '8', '--headless']), { dataParallel: 1, pipelineParallel: 1 });
  assert.deepEqual(otherParallelism(['--data-parallel-size', '4', '--data-parallel-rank', '1']), { dataParallel: 1, pipelineParallel: 1 });
});

test("otherParallelism reads the underscore spellings vLLM accepts (--pipeline_parallel_size)", async () => {
  // vLLM's FlexibleArgumentParser turns `_` into `-` in every `--` name (vllm/utils/argparse_utils.py).
  assert.deepEqual(otherParallelism(['--pipeline_parallel_size', '2', '--data_parallel_size=2']), { dataParallel: 2, pipelineParallel: 2 });
  assert.deepEqual(otherParallelism(['--data_parallel_size', '4', '--data_parallel_rank', '1']), { dataParallel: 1, pipelineParallel: 1 });
  const model = await makeModelDir({ heads: 16 });
  const pp = await plan({ model, extraArgs: ['--pipeline_parallel_size', '2'] }, 4);
  assert.equal(pp.tensorParallel?.size, 2, pp.argv.join(' '));
});

test('otherParallelism reads the abbreviations vLLM accepts (--pipe 2 is -pp 2)', async () => {
  // vLLM's argparse keeps allow_abbrev on: a unique prefix of a flag is that flag.
  assert.deepEqual(otherParallelism(['--pipeline-parallel', '2', '--data-parallel-size-l=2']), { dataParallel: 2, pipelineParallel: 2 });
  assert.deepEqual(otherParallelism(['--pipe=3']), { dataParallel: 1, pipelineParallel: 3 });
  assert.deepEqual(otherParallelism(['--data-parallel-size', '4', '--headl']), { dataParallel: 1, pipelineParallel: 1 });
  // A prefix of several (vLLM refuses it as ambiguous) counts as nothing; exact names stay exact.
  assert.deepEqual(otherParallelism(['--data-parallel-s', '4']), { dataParallel: 1, pipelineParallel: 1 });
  assert.deepEqual(otherParallelism(['--data-parallel-size', '4']), { dataParallel: 4, pipelineParallel: 1 });
  const model = await makeModelDir({ heads: 16 });
  const pp = await plan({ model, extraArgs: ['--pipeline-parallel', '2'] }, 4);
  assert.equal(pp.tensorParallel?.size, 2, pp.argv.join(' '));
});

test('auto tensor parallelism splits the GPUs among data-parallel ranks and pipeline stages', async () => {
  const model = await makeModelDir({ heads: 32 });
  const dp = await plan({ model, extraArgs: ['--data-parallel-size', '2'] }, 4);
  assert.deepEqual(dp.problems, []);
  assert.equal(dp.tensorParallel?.size, 2);
  assert.match(dp.tensorParallel?.reason ?? '', /4 GPUs shared by data-parallel size 2: 2 per group/);
  assert.ok(dp.argv.join(' ').includes('--tensor-parallel-size 2'), dp.argv.join(' '));
  const both = await plan({ model, extraArgs: ['-dp', '2', '-pp', '2'] }, 8);
  assert.equal(both.tensorParallel?.size, 2);
  const plain = await plan({ model }, 4);
  assert.equal(plain.tensorParallel?.size, 4);
});

test('more data-parallel ranks than GPUs is a problem (exit 2) before anything starts', async () => {
  const model = await makeModelDir({ heads: 32 });
  const p = await plan({ model, extraArgs: ['--data-parallel-size', '4'] }, 2);
  assert.equal(p.problems[0]?.code, 'NO_GPU');
  assert.equal(p.problems[0]?.exitCode, 2);
  assert.match(p.problems[0]?.message ?? '', /data-parallel size 4 in vllm\.args needs at least 4 GPUs, and 2 are available/);
});

test('an explicit size that does not divide the heads, or that with -dp needs more GPUs, is a warning', async () => {
  const model = await makeModelDir({ heads: 12 });
  const p = await plan({ model, tensorParallelSize: '5' }, 8);
  assert.match(p.warnings.join('\n'), /tensor-parallel size 5 does not split the model's 12 attention heads and 2 key-value heads: vLLM will refuse it \(use a size such as 4, or auto\)/);
  const q = await plan({ model, tensorParallelSize: '2', extraArgs: ['-dp', '4'] }, 4);
  assert.match(q.warnings.join('\n'), /tensor-parallel size 2 x data-parallel size 4 = 8 GPUs is larger than the 4 visible GPU\(s\)/);
  const ok = await plan({ model, tensorParallelSize: '4' }, 8);
  assert.doesNotMatch(ok.warnings.join('\n'), /attention heads/);
});

test('CUDA_VISIBLE_DEVICES set in the config (environment_variables, vllm.env) counts, as vLLM will see it', async () => {
  const model = await makeModelDir({ heads: 32 });
  const env = { LLMSERVE_MASTER_KEY: KEY };
  const litellm = `model_list:\n  - model_name: m\n    litellm_params: { model: hosted_vllm/m, api_base: "http://127.0.0.1:3000/v1" }\nenvironment_variables:\n  CUDA_VISIBLE_DEVICES: "0,1"\n`;
  const a = await makePlan(await load({ 'litellm.config.yaml': litellm }, { config: 'litellm.config.yaml', model }, env), { run: smi(8), env });
  assert.equal(a.tensorParallel?.size, 2);
  assert.deepEqual(a.selection?.gpus.map((g) => g.index), [0, 1]);
  const own = `model: ${model}\nvllm:\n  env: { CUDA_VISIBLE_DEVICES: "2,3,4,5" }\n`;
  const b = await makePlan(await load({ 'llmserve.yaml': own }, {}, env), { run: smi(8), env });
  assert.equal(b.tensorParallel?.size, 4);
  assert.equal(b.env.CUDA_VISIBLE_DEVICES, '2,3,4,5');
});

test("nvidia-smi runs without the variables llmserve's keys come from (as vLLM does), with everything else", async () => {
  const seen: (NodeJS.ProcessEnv | undefined)[] = [];
  const recording: RunCommand = async (file, args, options) => {
    seen.push(options?.env);
    return smi(2)(file, args, options);
  };
  const env = { LLMSERVE_MASTER_KEY: 'sk-plan-test-0123456789abcdef', PATH: '/usr/bin', HF_HOME: '/cache' };
  const config = await loadConfig({ model: await makeModelDir({ heads: 12 }) }, { env });
  await makePlan(config, { run: recording, env });
  assert.ok(seen.length > 0, 'nvidia-smi was asked');
  for (const e of seen) {
    assert.equal(e?.LLMSERVE_MASTER_KEY, undefined);
    assert.equal(e?.PATH, '/usr/bin');
    assert.equal(e?.HF_HOME, '/cache');
  }
});

test('on MIG instances auto is 1 per vLLM, and says why; an explicit size above 1 is a warning', async () => {
  // CUDA lets one process use only one MIG instance (NVIDIA's MIG user guide): a vLLM with -tp 2 over two fails.
  const model = await makeModelDir({ heads: 32 });
  const env = { LLMSERVE_MASTER_KEY: KEY, CUDA_VISIBLE_DEVICES: 'MIG-aaaaaaaa-1111-2222-3333-000000000001,MIG-bbbbbbbb-1111-2222-3333-000000000002' };
  const auto = await makePlan(await loadConfig({ model }, { env }), { run: smi(1), env });
  assert.deepEqual(auto.problems, []);
  assert.equal(auto.tensorParallel?.size, 1);
  assert.ok(auto.argv.join(' ').includes('--tensor-parallel-size 1'), auto.argv.join(' '));
  assert.match(auto.warnings.join('\n'), /tensor-parallel size 1: 2 visible GPUs are MIG instances, and CUDA lets one process use only one MIG instance: using 1 \(to use them all, give each its own entry of models: with gpus: 1\)/);
  const explicit = await makePlan(await loadConfig({ model, tensorParallelSize: '2' }, { env }), { run: smi(1), env });
  assert.deepEqual(explicit.problems, []);
  assert.equal(explicit.tensorParallel?.size, 2);
  assert.match(explicit.warnings.join('\n'), /tensor-parallel size 2 on MIG instances: CUDA lets one process use only one MIG instance, so vLLM will find 1 GPU and fail to start/);
  const one = await makePlan(await loadConfig({ model, tensorParallelSize: '1' }, { env }), { run: smi(1), env });
  assert.doesNotMatch(one.warnings.join('\n'), /MIG/);
  const whole = await plan({ model }, 2);
  assert.equal(whole.tensorParallel?.size, 2, 'whole GPUs keep the GPU count');
});

test('LoRA adapters: shared --lora-modules with several models is a clash (exit 2); a second --lora-modules is said to drop the first', async () => {
  const model = await makeModelDir({ heads: 16 });
  const env = { LLMSERVE_MASTER_KEY: KEY };
  // The shared vllm.args come before each entry's own: both models would serve "sql", and the first would get it all.
  const shared = `vllm:\n  args: [--enable-lora, --lora-modules, sql=/adapters/sql]\nmodels:\n  - { model: ${model}, served_model_name: alpha, gpus: 1 }\n  - { model: ${model}, served_model_name: beta, gpus: 1 }\n`;
  const clash = await makePlan(await load({ 'llmserve.yaml': shared }, {}, env), { run: smi(2), env });
  assert.deepEqual(clash.problems.map((p) => [p.exitCode, p.message]), [[2, 'model "beta": its LoRA adapter "sql" (--lora-modules) is also a LoRA adapter of model "alpha"']]);
  // vLLM keeps the last --lora-modules only: b1 would be listed and routed by the proxy, and answered 404 by vLLM.
  const twice = `models:\n  - { model: ${model}, served_model_name: alpha, gpus: 1 }\n  - { model: ${model}, served_model_name: beta, gpus: 1, vllm: { args: [--enable-lora, --lora-modules, b1=/a/b1, --lora-modules, b2=/a/b2] } }\n`;
  const dropped = await makePlan(await load({ 'llmserve.yaml': twice }, {}, env), { run: smi(2), env });
  assert.deepEqual(dropped.problems, []);
  assert.match(dropped.warnings.join('\n'), /model "beta": --lora-modules appears 2 times in vLLM's arguments, and vLLM keeps only the last one's adapters: "b1" will not be served/);
});

test('auto with heads llmserve cannot read (a hub id): every GPU, and a warning that vLLM refuses a size the heads do not divide', async () => {
  const hub = await plan({ model: 'Qwen/Qwen2.5-7B-Instruct' }, 6);
  assert.equal(hub.tensorParallel?.size, 6);
  assert.match(hub.warnings.join('\n'), /tensor-parallel size 6 \(auto\) is every visible GPU: the model's attention heads are unknown \(a hub id: its config\.json is not here before vLLM downloads it\)/);
  // One GPU, or heads read from a local config.json: nothing to say.
  assert.doesNotMatch((await plan({ model: 'Qwen/Qwen2.5-7B-Instruct' }, 1)).warnings.join('\n'), /attention heads are unknown/);
  assert.doesNotMatch((await plan({ model: await makeModelDir({ heads: 24 }) }, 6)).warnings.join('\n'), /attention heads are unknown/);
  // A local directory whose config.json lacks the heads: said, without the hub id's "(or use a local path)".
  const headless = await makeModelDir();
  const config = JSON.parse(readFileSync(path.join(headless, 'config.json'), 'utf8')) as Record<string, unknown>;
  delete config['num_attention_heads'];
  writeFileSync(path.join(headless, 'config.json'), JSON.stringify(config));
  const local = (await plan({ model: headless }, 6)).warnings.join('\n');
  assert.match(local, /heads are unknown \(its config\.json has no num_attention_heads\), and vLLM refuses a size they do not divide; set --tensor-parallel-size to one that does$/m);
  // A directory that is missing, or has no config.json, is a problem of its own: no guess about its heads beside it.
  const empty = await tempDir('llmserve-model-');
  for (const model of [path.join(empty, 'missing'), empty]) {
    assert.doesNotMatch((await plan({ model }, 6)).warnings.join('\n'), /attention heads are unknown/, model);
  }
});
