#!/usr/bin/env node
// Runs an ONNX model with ONNX Runtime 1.30 (CPU) and writes its outputs as .npy files.
// See README.md in this folder.
'use strict';

const fs = require('fs');
const path = require('path');
const lib = require('./lib.js');

const USAGE = `usage: node ort_run.js MODEL.onnx --out DIR [--input NAME=FILE.npy or NAME=FILE.pb]...
         [--opt all|extended|basic|disable] [--threads N] [--outputs all|NAME,NAME...]
         [--save-optimized FILE.onnx]
  --opt       graph optimization level (default all)
  --threads   intra-op threads (default 1)
  --outputs   default: the model's graph outputs; 'all': every node output of the top-level
              graph (intermediates are added as graph outputs, which can stop ORT from fusing
              the nodes that produce them); or a comma-separated list of tensor names
  writes DIR/<name with '/', ':', '\\' replaced by '_'>.npy and DIR/ort_manifest.json
`;

async function main() {
  const { positional, opts } = lib.parseArgs(process.argv.slice(2), {
    out: 'string', input: 'list', opt: 'string', threads: 'int', outputs: 'string',
    'save-optimized': 'string', help: 'flag',
  });
  if (opts.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (positional.length !== 1) throw new lib.UsageError('expected exactly one MODEL.onnx argument');
  if (!opts.out) throw new lib.UsageError('--out DIR is required');
  const modelPath = positional[0];
  let modelBuf;
  try {
    modelBuf = fs.readFileSync(modelPath);
  } catch (e) {
    throw new lib.UsageError(`cannot read model ${modelPath}: ${e.message}`);
  }
  const so = lib.sessionOptions(opts);
  const loaded = lib.loadInputs(opts.input);
  const ort = lib.requireOrt();

  // Which tensors to fetch.
  let wanted = null; // null = graph outputs
  let extra = [];
  if (opts.outputs !== undefined) {
    const { nodeOutputs, graphOutputs } = lib.listGraphTensors(modelBuf);
    if (opts.outputs === 'all') {
      wanted = [...nodeOutputs];
      for (const g of graphOutputs) if (!wanted.includes(g)) wanted.push(g);
    } else {
      wanted = opts.outputs.split(',').map((s) => s.trim()).filter((s) => s.length);
      if (!wanted.length) throw new lib.UsageError('--outputs needs at least one name');
      const known = new Set([...nodeOutputs, ...graphOutputs]);
      const unknown = wanted.filter((n) => !known.has(n));
      if (unknown.length) {
        throw new lib.UsageError(`--outputs: no node of the top-level graph produces ${unknown.map((n) => `'${n}'`).join(', ')}`);
      }
    }
    wanted = [...new Set(wanted)];
    extra = wanted.filter((n) => !graphOutputs.includes(n));
  }

  let session;
  try {
    if (extra.length) session = await ort.InferenceSession.create(lib.addGraphOutputs(modelBuf, extra), so);
    else session = await ort.InferenceSession.create(modelPath, so);
  } catch (e) {
    throw new Error(`ONNX Runtime could not load ${modelPath}: ${e.message}`);
  }
  if (wanted === null) wanted = [...session.outputNames];

  const feeds = lib.makeFeeds(ort, session, loaded);
  let results;
  try {
    results = await session.run(feeds, wanted);
  } catch (e) {
    throw new Error(`ONNX Runtime failed to run ${modelPath}: ${e.message}`);
  }

  fs.mkdirSync(opts.out, { recursive: true });
  const manifest = [];
  const used = new Set();
  for (const name of wanted) {
    const t = results[name];
    if (!t) throw new Error(`ONNX Runtime returned no value for output '${name}'`);
    if (t.type === 'string') throw new Error(`output '${name}' is a string tensor; .npy output supports numeric types only`);
    const base = lib.sanitize(name);
    let file = `${base}.npy`;
    for (let k = 2; used.has(file) || file === 'ort_manifest.json'; k++) file = `${base}__${k}.npy`;
    used.add(file);
    const dims = Array.from(t.dims, Number);
    lib.writeNpy(path.join(opts.out, file), t.type, dims, t.data);
    manifest.push({ name, file, dtype: t.type, shape: dims });
  }
  fs.writeFileSync(path.join(opts.out, 'ort_manifest.json'),
    `[\n${manifest.map((m) => `  ${JSON.stringify(m)}`).join(',\n')}\n]\n`);
  await session.release();
  return 0;
}

lib.runMain('ort_run.js', USAGE, main);
