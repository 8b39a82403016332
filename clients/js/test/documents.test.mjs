// The API documents (docs/api, written by the server's code) pass the official validators, and
// the generated protocol types (src/protocol.ts) are what the schemas give today.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { Parser, DiagnosticSeverity } from "@asyncapi/parser";
import { Validator } from "@seriousme/openapi-schema-validator";
import { protocolTypes, typesFile } from "../scripts/protocol-types.mjs";

const document = async (name) => JSON.parse(await readFile(new URL(`../../../docs/api/${name}`, import.meta.url), "utf8"));

test("src/protocol.ts is generated from the current schemas", async () => {
  const committed = await readFile(typesFile, "utf8");
  assert.ok(committed === (await protocolTypes()), "src/protocol.ts is stale: run `scripts/dev.sh api` and commit it");
});

test("the AsyncAPI document is valid AsyncAPI 3.0 (@asyncapi/parser)", async () => {
  const asyncapi = await document("asyncapi.json");
  const { document: parsed, diagnostics } = await new Parser().parse(asyncapi);
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  assert.deepEqual(errors.map((d) => `${d.path.join(".")}: ${d.message}`), []);
  assert.ok(parsed, "parsed");
  assert.equal(parsed.version(), "3.0.0");
  const messages = parsed.allMessages().length;
  const operations = parsed.allOperations().length;
  console.log(`asyncapi: valid 3.0.0, ${parsed.allChannels().length} channels, ${operations} operations, ${messages} messages, ${diagnostics.length} remarks`);
});

test("the OpenAPI document is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator)", async () => {
  const openapi = await document("openapi.json");
  const validator = new Validator();
  const result = await validator.validate(openapi);
  assert.deepEqual(result.errors ?? [], []);
  assert.ok(result.valid);
  assert.equal(validator.version, "3.1");
  console.log(`openapi: valid ${openapi.openapi}, ${Object.keys(openapi.paths).length} paths`);
});
