#!/usr/bin/env node
// Times ONNX Runtime 1.30 (CPU) on a model: session load time, per-run latency, peak RSS.
// See README.md in this folder.
'use strict';

const lib = require('./lib.js');

const USAGE = `usage: node ort_bench.js MODEL.onnx --input NAME=FILE.npy|FILE.pb ... [--threads N] [--runs R]
         [--warmup W] [--opt all|extended|basic|disable] [--json]
  --threads  intra-op threads (default 1)     --runs    timed runs (default 20)
  --warmup   untimed runs first (default 3)   --opt     graph optimization level (default all)
  --json     print one JSON object instead of text
`;

function median(sorted) {
  const n = sorted.length;
  return n % 2 ? sorted[(n - 1) / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2;
}

async function main() {
  const { positional, opts } = lib.parseArgs(process.argv.slice(2), {
    input: 'list', threads: 'int', runs: 'int', warmup: 'int', opt: 'string', json: 'flag', help: 'flag',
  });
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positional.length !== 1) throw new lib.UsageError('expected exactly one MODEL.onnx argument');
  const modelPath = positional[0];
  const runs = opts.runs === undefined ? 20 : opts.runs;
  const warmup = opts.warmup === undefined ? 3 : opts.warmup;
  if (runs < 1) throw new lib.UsageError('--runs must be >= 1');
  const so = lib.sessionOptions(opts);
  const loaded = lib.loadInputs(opts.input);
  const ort = lib.requireOrt();

  const t0 = process.hrtime.bigint();
  let session;
  try {
    session = await ort.InferenceSession.create(modelPath, so);
  } catch (e) {
    throw new Error(`ONNX Runtime could not load ${modelPath}: ${e.message}`);
  }
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  const feeds = lib.makeFeeds(ort, session, loaded);
  const fetches = [...session.outputNames];

  const runOnce = async () => {
    try {
      return await session.run(feeds, fetches);
    } catch (e) {
      throw new Error(`ONNX Runtime failed to run ${modelPath}: ${e.message}`);
    }
  };
  for (let i = 0; i < warmup; i++) await runOnce();
  const times = [];
  for (let i = 0; i < runs; i++) {
    const s = process.hrtime.bigint();
    await runOnce();
    times.push(Number(process.hrtime.bigint() - s) / 1e6);
  }
  const sorted = [...times].sort((a, b) => a - b);
  const res = {
    model: modelPath,
    ort_version: ort.env.versions.node,
    threads: so.intraOpNumThreads,
    opt: so.graphOptimizationLevel,
    load_ms: loadMs,
    runs,
    warmup,
    median_ms: median(sorted),
    min_ms: sorted[0],
    max_ms: sorted[sorted.length - 1],
    peak_rss_kib: lib.peakRssKiB(),
  };
  await session.release();
  if (opts.json) {
    process.stdout.write(JSON.stringify(res) + '\n');
  } else {
    const f = (x) => x.toFixed(3);
    process.stdout.write(
      `model        ${res.model}\n` +
      `ort          onnxruntime-node ${res.ort_version}, CPU, ${res.threads} intra-op thread(s), opt ${res.opt}\n` +
      `load         ${f(res.load_ms)} ms\n` +
      `latency      median ${f(res.median_ms)} ms, min ${f(res.min_ms)} ms, max ${f(res.max_ms)} ms ` +
      `(${runs} runs after ${warmup} warm-up)\n` +
      `peak RSS     ${res.peak_rss_kib === null ? 'unknown' : `${(res.peak_rss_kib / 1024).toFixed(1)} MiB`} (VmHWM, whole process)\n`);
  }
  return 0;
}

lib.runMain('ort_bench.js', USAGE, main);
