// `npm run generate`: writes crds/<plural>.ddi-ha.io.yaml and docs/api.md from the zod schemas.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderApiDoc } from "./api-doc.js";
import { renderCrdFiles } from "./crd-files.js";

const outDir = process.argv[2] ?? "crds";
mkdirSync(outDir, { recursive: true });
for (const { fileName, content } of renderCrdFiles()) {
  writeFileSync(join(outDir, fileName), content);
  console.log(`wrote ${join(outDir, fileName)}`);
}
writeFileSync("docs/api.md", renderApiDoc());
console.log("wrote docs/api.md");
