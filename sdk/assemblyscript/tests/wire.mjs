// npm test: compiles tests/wire.ts against the SDK with its asconfig.json,
// hands it the ABI's wire table (abi/testdata/wire.txt) and runs it. The
// SDK's host imports are stubs that return fault: the codecs call none.
import asc from "assemblyscript/asc";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";

const here = (p) => fileURLToPath(new URL(p, import.meta.url));
let binary;
const { error, stderr } = await asc.main(
  [here("wire.ts"), "--config", here("../asconfig.json"), "--target", "release", "--outFile", "wire.wasm"],
  { writeFile(name, contents) { if (name.endsWith(".wasm")) binary = contents; } },
);
if (error) {
  console.error(stderr.toString());
  process.exit(1);
}
const mod = new WebAssembly.Module(binary);
const imports = {};
for (const imp of WebAssembly.Module.imports(mod)) {
  if (imp.kind === "function") (imports[imp.module] ??= {})[imp.name] = () => 10;
}
let memory;
imports.wire = { report: (ptr, len) => console.log(Buffer.from(memory.buffer, ptr, len).toString()) };
const { exports } = new WebAssembly.Instance(mod, imports);
memory = exports.memory;
exports._initialize?.();
const table = readFileSync(here("../../../abi/testdata/wire.txt"));
new Uint8Array(memory.buffer, exports.alloc(table.length), table.length).set(table);
const failed = exports.run();
console.log(`wire table: ${failed} rows fail`);
process.exit(failed === 0 ? 0 : 1);
