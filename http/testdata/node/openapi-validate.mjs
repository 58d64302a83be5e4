// Validates an OpenAPI document file (3.0 or 3.1) with swagger-parser.
// Usage: node openapi-validate.mjs FILE. Prints "valid <version> <n> paths"
// or exits non-zero with the errors.
import SwaggerParser from "@apidevtools/swagger-parser";

try {
  const api = await SwaggerParser.validate(process.argv[2]);
  console.log(`valid ${api.openapi} ${Object.keys(api.paths).length} paths`);
} catch (e) {
  console.error(e.message);
  process.exit(1);
}
