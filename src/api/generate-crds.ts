// `npm run generate`: writes crds/<plural>.ddi-ha.io.yaml from the zod schemas.
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { renderCrdFiles } from "./crd-files.js";

const outDir = process.argv[2] ?? "crds";
mkdirSync(outDir, { recursive: true });
for (const { fileName, content } of renderCrdFiles()) {
  writeFileSync(join(outDir, fileName), content);
  console.log(`wrote ${join(outDir, fileName)}`);
}
