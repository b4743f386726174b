// Shared helpers for ort_run.js and ort_bench.js: .npy I/O, command-line parsing,
// session options, and a minimal protobuf walker for listing / adding graph outputs.
// No dependencies beyond Node itself and onnxruntime-node.
'use strict';

const fs = require('fs');

class UsageError extends Error {}

// ---------------------------------------------------------------------------
// .npy  (format versions 1.0, 2.0, 3.0; C order; little-endian or byte-order-free)
// ---------------------------------------------------------------------------

// numpy descr (without byte-order char) -> [ort tensor type, bytes per element, typed array]
const NPY_TYPES = {
  f4: ['float32', 4, Float32Array],
  f8: ['float64', 8, Float64Array],
  f2: ['float16', 2, Uint16Array],
  u1: ['uint8', 1, Uint8Array],
  i1: ['int8', 1, Int8Array],
  u2: ['uint16', 2, Uint16Array],
  i2: ['int16', 2, Int16Array],
  u4: ['uint32', 4, Uint32Array],
  i4: ['int32', 4, Int32Array],
  u8: ['uint64', 8, BigUint64Array],
  i8: ['int64', 8, BigInt64Array],
  b1: ['bool', 1, Uint8Array],
};
const ORT_TO_DESCR = {};
for (const [k, v] of Object.entries(NPY_TYPES)) ORT_TO_DESCR[v[0]] = (v[1] === 1 ? '|' : '<') + k;

function parseNpyHeader(header, file) {
  // The header is a Python dict literal, e.g.
  // {'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 224, 224), }
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header);
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header);
  const shape = /'shape'\s*:\s*\(([^)]*)\)/.exec(header);
  if (!descr || !fortran || !shape) throw new Error(`${file}: malformed .npy header: ${header.trim()}`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length > 0).map((s) => {
    const v = Number(s.replace(/L$/, ''));
    if (!Number.isInteger(v) || v < 0) throw new Error(`${file}: bad dimension '${s}' in .npy shape`);
    return v;
  });
  return { descr: descr[1], fortran: fortran[1] === 'True', shape: dims };
}

function readNpy(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read input file ${file}: ${e.message}`);
  }
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    throw new Error(`${file}: not a .npy file (bad magic)`);
  }
  const major = buf.readUInt8(6);
  let headerLen, headerStart;
  if (major === 1) {
    headerLen = buf.readUInt16LE(8);
    headerStart = 10;
  } else if (major === 2 || major === 3) {
    headerLen = buf.readUInt32LE(8);
    headerStart = 12;
  } else {
    throw new Error(`${file}: unsupported .npy format version ${major}.${buf.readUInt8(7)}`);
  }
  const header = buf.toString(major === 3 ? 'utf8' : 'latin1', headerStart, headerStart + headerLen);
  const h = parseNpyHeader(header, file);
  if (h.fortran) throw new Error(`${file}: Fortran-order arrays are not supported (save with np.ascontiguousarray)`);
  const order = h.descr[0];
  const key = h.descr.slice(1);
  const t = NPY_TYPES[key];
  if (!t || (!['<', '|', '='].includes(order) && !(order === '>' && t[1] === 1))) {
    throw new Error(`${file}: unsupported dtype '${h.descr}' (supported: float32, float64, float16, ` +
      'uint8, int8, uint16, int16, uint32, int32, uint64, int64, bool; little-endian)');
  }
  const [type, size, Ctor] = t;
  const count = h.shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const nbytes = count * size;
  if (buf.length - dataStart < nbytes) {
    throw new Error(`${file}: truncated: shape [${h.shape}] of ${h.descr} needs ${nbytes} bytes, ` +
      `file has ${buf.length - dataStart}`);
  }
  // Copy into a fresh, aligned buffer.
  const ab = new ArrayBuffer(nbytes);
  new Uint8Array(ab).set(buf.subarray(dataStart, dataStart + nbytes));
  let data = new Ctor(ab);
  if (type === 'bool') {
    // ORT wants bool as Uint8Array of 0/1.
    for (let i = 0; i < data.length; i++) data[i] = data[i] ? 1 : 0;
  }
  return { type, dims: h.shape, data };
}

function npyBytes(type, dims, data) {
  const descr = ORT_TO_DESCR[type];
  if (!descr) throw new Error(`cannot write tensor of type '${type}' as .npy`);
  const shapeStr = dims.length === 0 ? '()' : dims.length === 1 ? `(${dims[0]},)` : `(${dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeStr}, }`;
  // Version 1.0 header: magic(6) + version(2) + len(2) + header, padded with spaces to a multiple of 64, '\n'-terminated.
  let major = 1;
  let pre = 10;
  let total = pre + header.length + 1;
  let pad = (64 - (total % 64)) % 64;
  if (header.length + pad + 1 > 65535) {
    major = 2;
    pre = 12;
    total = pre + header.length + 1;
    pad = (64 - (total % 64)) % 64;
  }
  header = header + ' '.repeat(pad) + '\n';
  const head = Buffer.alloc(pre);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(major, 6);
  head.writeUInt8(0, 7);
  if (major === 1) head.writeUInt16LE(header.length, 8);
  else head.writeUInt32LE(header.length, 8);
  let body = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  if (type === 'bool') body = Buffer.from(Uint8Array.from(data, (v) => (v ? 1 : 0)));
  return Buffer.concat([head, Buffer.from(header, 'latin1'), body]);
}

function writeNpy(file, type, dims, data) {
  fs.writeFileSync(file, npyBytes(type, dims, data));
}

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

// Parses argv into { positional: [], opts: {name: value|[values]} }.
// spec: {name: 'string'|'int'|'list'|'flag'}
function parseArgs(argv, spec) {
  const positional = [];
  const opts = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('--')) {
      positional.push(a);
      continue;
    }
    let name = a.slice(2);
    let value;
    const eq = name.indexOf('=');
    if (eq >= 0) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    }
    const kind = spec[name];
    if (!kind) throw new UsageError(`unknown option --${name}`);
    if (kind === 'flag') {
      if (value !== undefined) throw new UsageError(`option --${name} takes no value`);
      opts[name] = true;
      continue;
    }
    if (value === undefined) {
      if (i + 1 >= argv.length) throw new UsageError(`option --${name} needs a value`);
      value = argv[++i];
    }
    if (kind === 'int') {
      const n = Number(value);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`option --${name} needs a non-negative integer, got '${value}'`);
      value = n;
    }
    if (kind === 'list') (opts[name] = opts[name] || []).push(value);
    else opts[name] = value;
  }
  return { positional, opts };
}

const OPT_LEVELS = { all: 'all', basic: 'basic', extended: 'extended', layout: 'layout', disable: 'disabled', disabled: 'disabled' };

function sessionOptions(opts) {
  const level = opts.opt === undefined ? 'all' : OPT_LEVELS[opts.opt];
  if (!level) throw new UsageError(`--opt must be one of all|extended|basic|disable (got '${opts.opt}')`);
  const threads = opts.threads === undefined ? 1 : opts.threads;
  if (threads < 1) throw new UsageError('--threads must be >= 1');
  const so = {
    executionProviders: ['cpu'],
    graphOptimizationLevel: level,
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
  };
  if (opts['save-optimized']) so.optimizedModelFilePath = opts['save-optimized'];
  return so;
}

// --input NAME=FILE.npy or NAME=FILE.pb (a TensorProto) (NAME may itself contain '=' only if FILE does not; we split at the last '=')
function loadInputs(list) {
  const feeds = {};
  for (const spec of list || []) {
    const eq = spec.lastIndexOf('=');
    if (eq <= 0 || eq === spec.length - 1) throw new UsageError(`--input needs NAME=FILE.npy, got '${spec}'`);
    const name = spec.slice(0, eq);
    const file = spec.slice(eq + 1);
    if (name in feeds) throw new UsageError(`input '${name}' given twice`);
    feeds[name] = { file, ...readTensorFile(file) };
  }
  return feeds;
}

// Checks the feeds against the session's inputs and builds ort.Tensor objects.
function makeFeeds(ort, session, loaded) {
  const meta = {};
  for (const m of session.inputMetadata || []) meta[m.name] = m;
  const missing = session.inputNames.filter((n) => !(n in loaded));
  if (missing.length) {
    throw new UsageError(`missing input(s): ${missing.map((n) => describeInput(n, meta[n])).join(', ')}` +
      ' (give each as --input NAME=FILE.npy)');
  }
  const feeds = {};
  for (const [name, t] of Object.entries(loaded)) {
    if (!session.inputNames.includes(name)) {
      throw new UsageError(`'${name}' is not an input of the model; its inputs are: ` +
        session.inputNames.map((n) => describeInput(n, meta[n])).join(', '));
    }
    const m = meta[name];
    if (m && m.isTensor && m.type && m.type !== t.type) {
      throw new UsageError(`input '${name}' (${t.file}) has dtype ${t.type}, the model wants ${m.type}`);
    }
    if (m && m.isTensor && Array.isArray(m.shape) && m.shape.length) {
      const bad = m.shape.length !== t.dims.length ||
        m.shape.some((d, i) => typeof d === 'number' && d >= 0 && d !== t.dims[i]);
      if (bad) {
        throw new UsageError(`input '${name}' (${t.file}) has shape [${t.dims}], the model wants ` +
          `[${m.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : `'${d}'`))}]`);
      }
    }
    feeds[name] = new ort.Tensor(t.type, t.data, t.dims);
  }
  return feeds;
}

function describeInput(name, m) {
  if (!m || !m.isTensor) return `'${name}'`;
  return `'${name}' ${m.type}[${(m.shape || []).map((d) => (typeof d === 'number' && d >= 0 ? d : `'${d}'`))}]`;
}

// ---------------------------------------------------------------------------
// Minimal protobuf walking of ModelProto, enough to list node outputs and
// to append graph outputs (ModelProto.graph = field 7, GraphProto.node = 1,
// GraphProto.output = 12, NodeProto.output = 2, ValueInfoProto.name = 1).
// ---------------------------------------------------------------------------

function readVarint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error('truncated protobuf varint');
    const b = buf[pos++];
    result |= BigInt(b & 0x7f) << shift;
    if (!(b & 0x80)) break;
    shift += 7n;
    if (shift > 63n) throw new Error('protobuf varint too long');
  }
  return [result, pos];
}

// Calls fn(fieldNumber, wireType, valueOrSlice) for each field of the message in buf[start,end).
function walkFields(buf, start, end, fn) {
  let pos = start;
  while (pos < end) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      let v;
      [v, pos] = readVarint(buf, pos);
      fn(field, wire, v);
    } else if (wire === 1) {
      pos += 8;
    } else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const l = Number(len);
      if (pos + l > end) throw new Error('truncated protobuf field');
      fn(field, wire, [pos, pos + l]);
      pos += l;
    } else if (wire === 5) {
      pos += 4;
    } else {
      throw new Error(`unsupported protobuf wire type ${wire}`);
    }
  }
}

// Returns { nodeOutputs: [names in node order], graphOutputs: [names] } of the top-level graph.
function listGraphTensors(buf) {
  const graphs = [];
  walkFields(buf, 0, buf.length, (f, w, v) => { if (f === 7 && w === 2) graphs.push(v); });
  if (!graphs.length) throw new Error('model has no graph');
  const nodeOutputs = [];
  const graphOutputs = [];
  for (const [gs, ge] of graphs) {
    walkFields(buf, gs, ge, (f, w, v) => {
      if (f === 1 && w === 2) {
        walkFields(buf, v[0], v[1], (nf, nw, nv) => {
          if (nf === 2 && nw === 2) nodeOutputs.push(buf.toString('utf8', nv[0], nv[1]));
        });
      } else if (f === 12 && w === 2) {
        walkFields(buf, v[0], v[1], (vf, vw, vv) => {
          if (vf === 1 && vw === 2) graphOutputs.push(buf.toString('utf8', vv[0], vv[1]));
        });
      }
    });
  }
  return { nodeOutputs: nodeOutputs.filter((n) => n.length > 0), graphOutputs };
}

function encodeVarint(n) {
  const out = [];
  let v = BigInt(n);
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v) b |= 0x80;
    out.push(b);
  } while (v);
  return Buffer.from(out);
}

function lenField(field, payload) {
  return Buffer.concat([encodeVarint((field << 3) | 2), encodeVarint(payload.length), payload]);
}

// Appends graph outputs (name only, no type: ORT takes the type from the producing node).
// Protobuf merges a repeated occurrence of the embedded message ModelProto.graph, so appending
// a second field 7 whose GraphProto holds only `output` entries adds them to the graph.
function addGraphOutputs(buf, names) {
  if (!names.length) return buf;
  const outs = names.map((n) => lenField(12, lenField(1, Buffer.from(n, 'utf8'))));
  return Buffer.concat([buf, lenField(7, Buffer.concat(outs))]);
}

// ---------------------------------------------------------------------------
// TensorProto (.pb, as in the ONNX node tests' test_data_set_N/input_K.pb)
// ---------------------------------------------------------------------------

// TensorProto.data_type -> [ort type, bytes per element, typed array, typed field holding non-raw data]
const PB_TYPES = {
  1: ['float32', 4, Float32Array, 4],
  2: ['uint8', 1, Uint8Array, 5],
  3: ['int8', 1, Int8Array, 5],
  4: ['uint16', 2, Uint16Array, 5],
  5: ['int16', 2, Int16Array, 5],
  6: ['int32', 4, Int32Array, 5],
  7: ['int64', 8, BigInt64Array, 7],
  9: ['bool', 1, Uint8Array, 5],
  10: ['float16', 2, Uint16Array, 5],
  11: ['float64', 8, Float64Array, 10],
  12: ['uint32', 4, Uint32Array, 11],
  13: ['uint64', 8, BigUint64Array, 11],
};

function readTensorProto(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw new UsageError(`cannot read input file ${file}: ${e.message}`);
  }
  const dims = [];
  let dataType = 0;
  let raw = null;
  let name = '';
  let external = false;
  const values = []; // non-raw values, as Number or BigInt (int64/uint64) or float bits
  let pos = 0;
  const fail = (m) => { throw new Error(`${file}: ${m}`); };
  while (pos < buf.length) {
    let key;
    [key, pos] = readVarint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === 0) {
      let v;
      [v, pos] = readVarint(buf, pos);
      if (field === 1) dims.push(Number(BigInt.asIntN(64, v)));
      else if (field === 2) dataType = Number(v);
      else if (field === 14) external = Number(v) === 1;
      else if ([5, 7, 11].includes(field)) values.push({ field, v });
    } else if (wire === 1) {
      if (field === 10) values.push({ field, v: buf.readDoubleLE(pos) });
      pos += 8;
    } else if (wire === 5) {
      if (field === 4) values.push({ field, v: buf.readFloatLE(pos) });
      pos += 4;
    } else if (wire === 2) {
      let len;
      [len, pos] = readVarint(buf, pos);
      const s = pos;
      const e = pos + Number(len);
      if (e > buf.length) fail('truncated TensorProto');
      if (field === 9) raw = buf.subarray(s, e);
      else if (field === 8) name = buf.toString('utf8', s, e);
      else if (field === 1 || field === 5 || field === 7 || field === 11) {
        for (let p = s; p < e;) {
          let v;
          [v, p] = readVarint(buf, p);
          if (field === 1) dims.push(Number(BigInt.asIntN(64, v)));
          else values.push({ field, v });
        }
      } else if (field === 4) {
        for (let p = s; p < e; p += 4) values.push({ field, v: buf.readFloatLE(p) });
      } else if (field === 10) {
        for (let p = s; p < e; p += 8) values.push({ field, v: buf.readDoubleLE(p) });
      } else if (field === 6) {
        fail('string tensors are not supported');
      }
      pos = e;
    } else {
      fail(`not a TensorProto (wire type ${wire})`);
    }
  }
  if (external) fail('tensors with external data are not supported');
  const t = PB_TYPES[dataType];
  if (!t) fail(`unsupported TensorProto data_type ${dataType}`);
  const [type, size, Ctor, valueField] = t;
  const count = dims.reduce((a, b) => a * b, 1);
  const ab = new ArrayBuffer(count * size);
  const data = new Ctor(ab);
  if (raw) {
    if (raw.length !== count * size) fail(`raw_data has ${raw.length} bytes, shape [${dims}] needs ${count * size}`);
    new Uint8Array(ab).set(raw);
  } else {
    const vals = values.filter((x) => x.field === valueField).map((x) => x.v);
    if (vals.length !== count) fail(`holds ${vals.length} values, shape [${dims}] needs ${count}`);
    for (let i = 0; i < count; i++) {
      const v = vals[i];
      if (Ctor === BigInt64Array) data[i] = BigInt.asIntN(64, v);
      else if (Ctor === BigUint64Array) data[i] = BigInt.asUintN(64, v);
      else if (typeof v === 'bigint') data[i] = Number(BigInt.asIntN(64, v));
      else data[i] = v;
    }
  }
  if (type === 'bool') for (let i = 0; i < data.length; i++) data[i] = data[i] ? 1 : 0;
  return { type, dims, data, name };
}

// .npy or TensorProto .pb, by extension.
function readTensorFile(file) {
  return /\.pb$/i.test(file) ? readTensorProto(file) : readNpy(file);
}

function sanitize(name) {
  return name.replace(/[/:\\]/g, '_');
}

function peakRssKiB() {
  try {
    const s = fs.readFileSync('/proc/self/status', 'utf8');
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(s);
    return m ? Number(m[1]) : null;
  } catch (e) {
    return null;
  }
}

function requireOrt() {
  try {
    return require('onnxruntime-node');
  } catch (e) {
    throw new Error('cannot load onnxruntime-node; run in tests/ort: ' +
      'ONNXRUNTIME_NODE_INSTALL=skip npm ci --onnxruntime-node-install=skip  (' + e.message + ')');
  }
}

// Runs main(), turning any error into a message on stderr and exit code 1.
function runMain(prog, usage, main) {
  main().then((code) => process.exit(code || 0), (e) => {
    const msg = e && e.message ? e.message : String(e);
    process.stderr.write(`${prog}: error: ${msg}\n`);
    if (e instanceof UsageError) process.stderr.write(process.argv.length <= 2 ? usage : `(${prog} --help for usage)\n`);
    process.exit(1);
  });
}

module.exports = {
  UsageError, readNpy, writeNpy, npyBytes, parseArgs, sessionOptions, loadInputs, makeFeeds,
  listGraphTensors, addGraphOutputs, readTensorProto, readTensorFile, sanitize, peakRssKiB, requireOrt, runMain,
};
