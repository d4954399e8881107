import assert from "node:assert/strict";
import { test } from "node:test";
import { bufferedResponse } from "../../src/providers/http-fetch.js";

// The transport hands the SDK a Response over bytes already read (src/providers/http-fetch.ts).
// Every way of reading it must give what a real Response over the same bytes gives, including
// the errors of a second read, so the SDK (and a Node upgrade) cannot tell the difference.

const BODIES: [string, Buffer | null, string][] = [
  ["json", Buffer.from(JSON.stringify({ a: [1, "✓"] })), "application/json"],
  ["text with a BOM", Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from("after the mark")]), "text/plain"],
  ["invalid UTF-8", Buffer.from([0x61, 0xff, 0xfe, 0x62]), "text/plain"],
  ["empty", Buffer.alloc(0), "text/plain"],
  ["a form", Buffer.from("a=1&b=%E2%9C%93"), "application/x-www-form-urlencoded"],
  ["no body (204)", null, "text/plain"],
];

const pair = (bytes: Buffer | null, type: string): [Response, Response] => {
  const init = () => ({ status: bytes ? 200 : 204, statusText: "OK", headers: new Headers({ "content-type": type }) });
  return [bufferedResponse(bytes, init(), "http://x/y"), new Response(bytes, init())];
};

/** A read's outcome: its value (normalised), or the kind of error it rejected with. */
async function outcome(read: () => Promise<unknown>): Promise<unknown> {
  try {
    const v = await read();
    if (v instanceof ArrayBuffer) return { bytes: [...new Uint8Array(v)] };
    if (v instanceof Uint8Array) return { bytes: [...v] };
    if (v instanceof Blob) return { blob: [...new Uint8Array(await v.arrayBuffer())], type: v.type };
    if (v instanceof FormData) return { form: [...v.entries()] };
    return { value: v };
  } catch (err) {
    return { error: (err as Error).constructor.name };
  }
}

const READS = ["text", "json", "arrayBuffer", "blob", "formData", ...("bytes" in Response.prototype ? ["bytes"] : [])] as const;

for (const [name, bytes, type] of BODIES) {
  test(`buffered response, ${name}: every read, and a second read, as a real Response`, async () => {
    for (const first of READS) {
      for (const second of READS) {
        const [ours, theirs] = pair(bytes, type);
        const call = (r: Response, m: string) => () => (r as unknown as Record<string, () => Promise<unknown>>)[m]!.call(r);
        assert.deepEqual(await outcome(call(ours, first)), await outcome(call(theirs, first)), `${first}`);
        assert.equal(ours.bodyUsed, theirs.bodyUsed, `bodyUsed after ${first}`);
        assert.deepEqual(await outcome(call(ours, second)), await outcome(call(theirs, second)), `${second} after ${first}`);
      }
    }
  });

  test(`buffered response, ${name}: the body stream, and clones`, async () => {
    const [ours, theirs] = pair(bytes, type);
    assert.equal(ours.body === null, theirs.body === null);
    if (ours.body) {
      const readAll = async (r: Response) => Buffer.from(await new Response(r.body).arrayBuffer()).toString("latin1");
      assert.equal(await readAll(ours), await readAll(theirs));
      assert.equal(ours.bodyUsed, theirs.bodyUsed);
      assert.deepEqual(await outcome(() => ours.text()), await outcome(() => theirs.text()), "text after the stream was read");
    }
    // Read directly, then its stream: used up, as a real Response's is.
    const [r1, r2] = pair(bytes, type);
    await r1.text();
    await r2.text();
    assert.equal(r1.body === null, r2.body === null);
    assert.equal(r1.body?.locked, r2.body?.locked, "the stream of a body already read");
    assert.deepEqual(await outcome(() => r1.text()), await outcome(() => r2.text()), "a third read");
    // A reader taken on the stream: no clone, as with fetch.
    const [l1, l2] = pair(bytes, type);
    l1.body?.getReader();
    l2.body?.getReader();
    const refuses = (r: Response) => {
      try {
        r.clone();
        return false;
      } catch (err) {
        return err instanceof TypeError;
      }
    };
    assert.equal(refuses(l1), refuses(l2), "clone with a reader on the stream");
    const [a, b] = pair(bytes, type);
    const [ca, cb] = [a.clone(), b.clone()];
    assert.equal(await ca.text(), await cb.text());
    assert.equal(await a.text(), await b.text(), "the original is still readable after a clone is read");
    // A body read is used up, so it cannot be cloned; no body never is.
    if (bytes) {
      assert.throws(() => a.clone(), TypeError);
      assert.throws(() => b.clone(), TypeError);
    } else assert.equal(await a.clone().text(), await b.clone().text());
    assert.equal(ours.url, "http://x/y");
    assert.ok(ours instanceof Response);
    assert.equal(ours.status, theirs.status);
    assert.equal(ours.headers.get("content-type"), type);
  });
}

test("buffered response: every member of Response.prototype is either overridden or reads no body", () => {
  // A Node upgrade that adds a way of reading the body (as `bytes()` was added) would read the
  // empty body the class is built on: this fails first, naming the member.
  const overridden = new Set(["url", "body", "bodyUsed", "text", "json", "arrayBuffer", "blob", "formData", "bytes", "clone"]);
  const bodyless = new Set(["constructor", "type", "status", "ok", "redirected", "statusText", "headers"]);
  const proto = Object.getPrototypeOf(bufferedResponse(null, { status: 204 }, "x"));
  const own = new Set(Object.getOwnPropertyNames(proto));
  for (const name of Object.getOwnPropertyNames(Response.prototype)) {
    if (bodyless.has(name)) continue;
    assert.ok(overridden.has(name) && own.has(name), `Response.prototype.${name} is not overridden by the buffered response`);
  }
});
