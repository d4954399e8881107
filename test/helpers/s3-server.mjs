/**
 * s3rver in a process of its own, for TestS3: `node --openssl-legacy-provider s3-server.mjs DIR PORT BUCKET`.
 * Prints one JSON line `{"port": N}` once listening, then serves until killed.
 *
 * Its own process for two reasons: a crash can be a real SIGKILL that cuts connections mid-body,
 * and s3rver signs the continuation token of a listing longer than 1,000 keys with DES, which
 * Node 20's OpenSSL 3 offers only with the legacy provider; the flag belongs to this server, not
 * to the tests or the CLI under test.
 */
import S3rver from "s3rver";

const [directory, port, bucket] = process.argv.slice(2);
const server = new S3rver({ port: Number(port), address: "127.0.0.1", silent: true, directory, configureBuckets: [{ name: bucket, configs: [] }] });
const addr = await server.run();
process.stdout.write(`${JSON.stringify({ port: addr.port })}\n`);

// Down at once for clients, as a crashed server is: connections cut, nothing waited for. The
// process itself ends only once s3rver has settled the files of the requests it was cut off in,
// as a real store's objects are whole or absent (a SIGKILL here would leave half-written files
// that make s3rver's own listing fail, which no S3 does).
process.on("SIGTERM", () => {
  const closed = server.close();
  server.httpServer?.closeAllConnections();
  closed.finally(() => setTimeout(() => process.exit(0), 50));
});
