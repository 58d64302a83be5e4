// MCP client test: connects to an alknet node's /mcp with the official
// TypeScript SDK (streamable HTTP), lists the tools and calls test__echo.
// Usage: node client.mjs URL TOKEN. Prints one JSON object on stdout.
import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { StreamableHTTPClientTransport } from "@modelcontextprotocol/sdk/client/streamableHttp.js";

const [url, token] = process.argv.slice(2);
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
const client = new Client({ name: "alknet-test", version: "1.0.0" });
await client.connect(transport);
const { tools } = await client.listTools();
const result = await client.callTool({ name: "test__echo", arguments: { msg: "from typescript" } });
console.log(JSON.stringify({ tools: tools.map((t) => t.name), result }));
await client.close();
