// A small Node web service: answers / with its release and /healthz with ok.
// It has no dependencies, so `npm install` needs no network.
"use strict";

const http = require("http");

const release = process.env.ENCLII_RELEASE_ID || "dev";
const port = Number(process.env.PORT || 8080);

function log(level, message, fields = {}) {
  // One JSON object per line: Enclii parses level, message and the other fields.
  process.stdout.write(JSON.stringify({ level, message, ...fields }) + "\n");
}

const server = http.createServer((req, res) => {
  const started = process.hrtime.bigint();
  const body =
    req.url === "/healthz"
      ? "ok\n"
      : JSON.stringify({ release, path: req.url, runtime: "node" }) + "\n";
  res.writeHead(200, { "content-type": "application/json" });
  res.end(body);
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  log("info", `${req.method} ${req.url}`, { status: 200, ms });
});

server.listen(port, "127.0.0.1", () => log("info", `listening on ${port}`));

process.on("SIGTERM", () => {
  log("info", "SIGTERM: finishing in-flight requests");
  server.close(() => process.exit(0));
});
