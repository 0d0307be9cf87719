// Compile one standard-JSON input with solcjs and print the standard-JSON output.
// Usage: node solc_driver.js <directory containing the solc package>  (input on stdin)
// Kept tiny on purpose: Python builds the input, checks the output and caches the result.
"use strict";
const path = require("path");

const solcDir = process.argv[2];
if (!solcDir) {
  process.stderr.write("usage: node solc_driver.js SOLC_PACKAGE_DIR < input.json\n");
  process.exit(2);
}
const solc = require(path.resolve(solcDir));

let input = "";
process.stdin.setEncoding("utf8");
process.stdin.on("data", (chunk) => { input += chunk; });
process.stdin.on("end", () => {
  // Every allowed source is part of the input, so any other import is refused.
  const refuse = (p) => ({ error: "import '" + p + "' is not available: only the strategy base files are" });
  const output = solc.compile(input, { import: refuse });
  process.stdout.write(JSON.stringify({ version: solc.version(), output: JSON.parse(output) }));
});
