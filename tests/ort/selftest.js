#!/usr/bin/env node
// Self-test of ort_run.js and ort_bench.js (npm run selftest). Uses ../shared/testdata beside the
// checkout (or $QUINT_TESTDATA); skips with a message, exit code 0, when that folder is absent.
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');
const { execFileSync } = require('child_process');
const lib = require('./lib.js');

const here = __dirname;
const testdata = process.env.QUINT_TESTDATA || path.resolve(here, '..', '..', '..', 'shared', 'testdata');
if (!fs.existsSync(path.join(testdata, 'models'))) {
  console.log(`SKIP: no test data at ${testdata} (set QUINT_TESTDATA)`);
  process.exit(0);
}
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'quint-ort-selftest-'));
const node = process.execPath;
const run = (script, args) => execFileSync(node, [path.join(here, script), ...args], { encoding: 'utf8' });
let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
};

// 1. MobileNetV2 int8 with a deterministic pseudo-random float32 input [1,3,224,224].
const model = path.join(testdata, 'models', 'mobilenetv2-12-int8.onnx');
const x = new Float32Array(3 * 224 * 224);
let seed = 12345;
for (let i = 0; i < x.length; i++) {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
  x[i] = (seed >>> 8) / (1 << 24) * 4 - 2;
}
const xf = path.join(tmp, 'x.npy');
lib.writeNpy(xf, 'float32', [1, 3, 224, 224], x);
const outA = path.join(tmp, 'a');
const outB = path.join(tmp, 'b');
run('ort_run.js', [model, '--out', outA, '--input', `input=${xf}`]);
const man = JSON.parse(fs.readFileSync(path.join(outA, 'ort_manifest.json'), 'utf8'));
check(man.length === 1 && man[0].name === 'output' && man[0].dtype === 'float32' &&
  man[0].shape.join() === '1,1000', 'mobilenet: one float32 [1,1000] output in the manifest');
const y = lib.readNpy(path.join(outA, man[0].file));
check(y.dims.join() === '1,1000' && y.data.every(Number.isFinite), 'mobilenet: output .npy readable, finite');
run('ort_run.js', [model, '--out', outB, '--input', `input=${xf}`, '--threads', '2', '--opt', 'disable']);
const y2 = lib.readNpy(path.join(outB, 'output.npy'));
check(y2.data.every((v, i) => v === y.data[i]), 'mobilenet: 2 threads + no optimization give identical output');
const outC = path.join(tmp, 'c');
run('ort_run.js', [model, '--out', outC, '--input', `input=${xf}`, '--outputs', 'all']);
const manAll = JSON.parse(fs.readFileSync(path.join(outC, 'ort_manifest.json'), 'utf8'));
check(manAll.length > 60 && manAll.some((m) => m.dtype === 'uint8'), `mobilenet: --outputs all dumps ${manAll.length} tensors`);
const bench = JSON.parse(run('ort_bench.js', [model, '--input', `input=${xf}`, '--runs', '5', '--warmup', '1', '--json']));
check(bench.median_ms > 0 && bench.min_ms <= bench.median_ms && bench.median_ms <= bench.max_ms &&
  bench.load_ms > 0 && bench.peak_rss_kib > 0, `ort_bench: median ${bench.median_ms.toFixed(2)} ms, ` +
  `peak RSS ${bench.peak_rss_kib} KiB`);

// 2. An ONNX node test, fed its TensorProto inputs, compared with its expected output.
const nt = path.join(testdata, 'onnx-node-tests', 'test_qlinearconv');
const names = ['x', 'x_scale', 'x_zero_point', 'w', 'w_scale', 'w_zero_point', 'y_scale', 'y_zero_point'];
const outD = path.join(tmp, 'd');
run('ort_run.js', [path.join(nt, 'model.onnx'), '--out', outD,
  ...names.flatMap((n, k) => ['--input', `${n}=${path.join(nt, 'test_data_set_0', `input_${k}.pb`)}`])]);
const got = lib.readNpy(path.join(outD, 'y.npy'));
const want = lib.readTensorProto(path.join(nt, 'test_data_set_0', 'output_0.pb'));
check(got.type === want.type && got.dims.join() === want.dims.join() &&
  got.data.every((v, i) => v === want.data[i]), 'test_qlinearconv: output equals output_0.pb');

// 3. A failure is reported with exit code 1.
let code = 0;
try {
  execFileSync(node, [path.join(here, 'ort_run.js'), model, '--out', outA], { stdio: 'pipe' });
} catch (e) {
  code = e.status;
}
check(code === 1, 'missing input: exit code 1');

fs.rmSync(tmp, { recursive: true, force: true });
console.log(failures ? `${failures} FAILED` : 'all passed');
process.exit(failures ? 1 : 0);
