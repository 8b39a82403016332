// The TypeScript types of the protocol, generated from the schemas the server's types give
// (docs/api/protocol.schema.json). `npm run generate` writes them to src/protocol.ts;
// test/documents.test.mjs fails while that file differs from what this makes.
import { readFile, writeFile } from "node:fs/promises";
import { fileURLToPath } from "node:url";
import { compile } from "json-schema-to-typescript";

export const schemaFile = fileURLToPath(new URL("../../../docs/api/protocol.schema.json", import.meta.url));
export const typesFile = fileURLToPath(new URL("../src/protocol.ts", import.meta.url));

export async function protocolTypes() {
  const schema = JSON.parse(await readFile(schemaFile, "utf8"));
  return compile(schema, "Protocol", {
    bannerComment: "// Generated from docs/api/protocol.schema.json by `npm run generate`: do not edit.",
    unreachableDefinitions: true,
    additionalProperties: false,
    strictIndexSignatures: true,
    format: true,
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  await writeFile(typesFile, await protocolTypes());
  console.log("wrote src/protocol.ts");
}
