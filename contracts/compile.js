#!/usr/bin/env node
// Compiles contracts/src/*.sol with the exact solc version pinned in
// package.json (solc-js, installed by `npm ci --prefix contracts`) and writes
// one deterministic artifact per contract to <outdir>/<Name>.json.
//
// Usage: node contracts/compile.js [outdir]   (default: contracts/artifacts)
//
// Output is byte-for-byte reproducible: object keys are sorted, formatting is
// fixed (2-space indent, trailing newline), there are no timestamps or
// absolute paths, and the metadata hash is omitted from the bytecode.
'use strict';

const fs = require('fs');
const path = require('path');

const ROOT = __dirname;
const SRC_DIR = path.join(ROOT, 'src');

let solc;
try {
  solc = require('solc');
} catch (e) {
  console.error('compile.js: cannot load the solc package; run `npm ci --prefix contracts` first');
  process.exit(2);
}

const pinned = require(path.join(ROOT, 'package.json')).dependencies.solc;
const longVersion = solc.version();
if (!longVersion.startsWith(pinned + '+')) {
  console.error(`compile.js: installed solc ${longVersion} does not match pinned ${pinned}; run \`npm ci --prefix contracts\``);
  process.exit(2);
}

const settings = {
  evmVersion: 'prague',
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: 'none', useLiteralContent: true },
  outputSelection: {
    '*': {
      '*': ['abi', 'evm.bytecode.object', 'evm.deployedBytecode.object', 'evm.methodIdentifiers'],
    },
  },
};

const files = fs.readdirSync(SRC_DIR).filter((f) => f.endsWith('.sol')).sort();
const sources = {};
for (const f of files) {
  sources[`src/${f}`] = { content: fs.readFileSync(path.join(SRC_DIR, f), 'utf8') };
}

const input = { language: 'Solidity', sources, settings };
const output = JSON.parse(solc.compile(JSON.stringify(input)));

let failed = false;
for (const err of output.errors || []) {
  process.stderr.write((err.formattedMessage || err.message) + '\n');
  if (err.severity === 'error') failed = true;
}
if (failed) {
  console.error('compile.js: compilation failed');
  process.exit(1);
}

// Recursively sort object keys; arrays keep their order (ABI order is
// determined by solc and is itself deterministic).
function sortKeys(v) {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') {
    const out = {};
    for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k]);
    return out;
  }
  return v;
}

const outDir = path.resolve(process.argv[2] || path.join(ROOT, 'artifacts'));
fs.mkdirSync(outDir, { recursive: true });

const compilerSettings = {
  evmVersion: settings.evmVersion,
  metadata: settings.metadata,
  optimizer: settings.optimizer,
};

const seen = new Set();
for (const sourceName of Object.keys(output.contracts || {}).sort()) {
  const contracts = output.contracts[sourceName];
  for (const name of Object.keys(contracts).sort()) {
    if (seen.has(name)) {
      console.error(`compile.js: duplicate contract name ${name}`);
      process.exit(1);
    }
    seen.add(name);
    const c = contracts[name];
    const artifact = {
      contractName: name,
      sourceName,
      abi: c.abi,
      bytecode: '0x' + c.evm.bytecode.object,
      deployedBytecode: '0x' + c.evm.deployedBytecode.object,
      methodIdentifiers: c.evm.methodIdentifiers,
      compiler: { name: 'solc', version: longVersion, settings: compilerSettings },
    };
    const file = path.join(outDir, `${name}.json`);
    fs.writeFileSync(file, JSON.stringify(sortKeys(artifact), null, 2) + '\n');
    console.log(`wrote ${path.relative(process.cwd(), file) || file}`);
  }
}
