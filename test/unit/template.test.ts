import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { before, test } from "node:test";
import { fileURLToPath } from "node:url";
import { Liquid } from "liquidjs";
import { type ChatRequest, KEY_VERSION, requestKey } from "../../src/plan/request.js";
import { compileTemplate, renderTemplate, TemplateRenderError } from "../../src/template/engine.js";
import { Structured } from "../../src/template/structured.js";
import { hashValue, initHashing } from "../../src/util/hash.js";

before(initHashing);

const liquid = new Liquid({ strictVariables: true, strictFilters: true });

test("plain templates render exactly as Liquid does", () => {
  const scope = { genre: "sci-fi <b>&", place: "Kyōto", index: 3, "long-enough": "yes", nonce: "n" };
  for (const src of ["{{ genre }} in {{place}}", "{{genre}}{{ index }}", "no holes at all", "", "{{ long-enough }}!", "a {{ nonce }}\n\n{{ genre }}\n"]) {
    const t = compileTemplate(src);
    assert.ok(t.plain, `${JSON.stringify(src)} should take the plain path`);
    assert.equal(renderTemplate(t, scope), liquid.parseAndRenderSync(src, scope));
  }
  for (const src of ["{{ genre | upcase }}", "{% if genre %}x{% endif %}", "{{- genre -}}", "{{ genre.size }}"]) {
    const t = compileTemplate(src);
    assert.equal(t.plain, undefined, `${src} needs Liquid`);
    assert.equal(renderTemplate(t, scope), liquid.parseAndRenderSync(src, scope));
  }
});

test("extra variables are read before the scope, without copying it", () => {
  const t = compileTemplate("{{ nonce }}/{{ a }}");
  assert.equal(renderTemplate(t, { a: "1", nonce: "old" }, { nonce: "new" }), "new/1");
  assert.equal(renderTemplate(compileTemplate("{{ nonce | upcase }}"), { nonce: "old" }, { nonce: "new" }), "NEW");
});

test("dates render the same on every machine: UTC and en-US, whatever TZ and locale say", () => {
  // The locale half (%c, %x, %X) is also run under LANG=de_DE in a child process below.
  const t = compileTemplate('{{ d | date: "%Y-%m-%d %H:%M %a %b" }}|{{ "2024-03-05" | date: "%d %H:%M" }}');
  const local = compileTemplate('{{ d | date: "%c|%x|%X|%%c" }}');
  const before = process.env.TZ;
  try {
    for (const tz of ["America/Los_Angeles", "Asia/Tokyo", "UTC"]) {
      process.env.TZ = tz; // Node re-reads TZ when it is assigned
      assert.equal(renderTemplate(t, { d: "2024-01-01T00:30:00Z" }), "2024-01-01 00:30 Mon Jan|05 00:00", `under TZ=${tz}`);
      assert.equal(renderTemplate(local, { d: "2024-01-01T13:05:09Z" }), "1/1/2024, 1:05:09 PM|1/1/2024|1:05:09 PM|%c", `under TZ=${tz}`);
    }
  } finally {
    if (before === undefined) delete process.env.TZ;
    else process.env.TZ = before;
  }
});

test("%c, %x and %X are en-US under a German locale too", (t) => {
  const engine = fileURLToPath(new URL("../../src/template/engine.ts", import.meta.url));
  const script = `import(${JSON.stringify(engine)}).then((e) => console.log(JSON.stringify([new Date(0).toLocaleString("default", { timeZone: "UTC" }), e.renderTemplate(e.compileTemplate('{{ d | date: "%c|%x|%X" }}'), { d: "2024-01-01T13:05:09Z" })])))`;
  const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], {
    env: { ...process.env, LANG: "de_DE.UTF-8", LC_ALL: "de_DE.UTF-8" },
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  const [machine, rendered] = JSON.parse(r.stdout) as [string, string];
  if (machine === "1/1/1970, 12:00:00 AM") return t.skip("this Node has no German locale data");
  assert.equal(rendered, "1/1/2024, 1:05:09 PM|1/1/2024|1:05:09 PM", `the machine itself formats as ${machine}`);
});

test("a render failure is a user error naming where the template is", () => {
  const t = compileTemplate("{{ a | append: }}", "dataset.yaml:3:4 steps[0].generate.prompt");
  assert.throws(
    () => renderTemplate(t, { a: "x" }),
    (e: unknown) => e instanceof TemplateRenderError && e.message.startsWith("dataset.yaml:3:4"),
  );
});

test("requestKey equals the hash of the request's canonical JSON, whatever the key order", () => {
  const req: ChatRequest = {
    provider: "openai",
    endpoint: "https://api.openai.com/v1",
    model: "m",
    messages: [
      { role: "system", content: 's\u2028"q"' },
      { role: "user", content: "é\n" },
    ],
    params: { top_p: 1, temperature: 0.5 },
    extra_body: { z: [1, { b: 2, a: 1 }] },
  };
  assert.equal(requestKey(req), hashValue({ key: KEY_VERSION, ...req }));
  const reordered: ChatRequest = {
    messages: req.messages,
    params: { temperature: 0.5, top_p: 1 },
    extra_body: { z: [1, { a: 1, b: 2 }] },
    model: "m",
    endpoint: "https://api.openai.com/v1",
    provider: "openai",
  };
  assert.equal(requestKey(reordered), requestKey(req));
  assert.notEqual(requestKey({ ...req, params: { temperature: 0.6, top_p: 1 } }), requestKey(req));
});

test("no path that renders reads JavaScript's machinery: only a scope's own names are variables", () => {
  const scope = { genre: "x" };
  for (const src of [
    "{{ constructor }}",
    "{{ toString }}",
    "{{ __proto__ }}",
    "a {{ constructor }} b",
    "{{ constructor | upcase }}",
    "{{ genre.constructor }}",
  ]) {
    const t = compileTemplate(src);
    assert.throws(() => renderTemplate(t, scope), TemplateRenderError, src);
    assert.throws(() => renderTemplate(t, scope, { nonce: "n" }), TemplateRenderError, `${src} with a nonce`);
  }
  assert.equal(renderTemplate(compileTemplate("{{ genre | map: 'constructor' }}"), scope), "");
});

test("a structured answer prints as its raw text, through filters too; its fields, nested objects and lists read as data", () => {
  const text = '{"question":"Why?","n":0,"ok":false,"meta":{"src":"x"},"tags":["a","b"],"constructor":"c"}';
  const q = new Structured(text, JSON.parse(text), "answer");
  // Same text as the string would render, on the plain path and through Liquid's filters.
  for (const src of ["{{ q }}", "{{ q | json }}", "{{ q | upcase }}", "{{ q | append: '!' }}", "{{ q | strip }}"])
    assert.equal(renderTemplate(compileTemplate(src), { q }), renderTemplate(compileTemplate(src), { q: text }), src);
  const fields =
    "{{ q.question }}|{{ q.n }}|{{ q.ok }}|{{ q.meta }}|{{ q.meta.src }}|{% for t in q.tags %}{{ t }}{% endfor %}|{{ q.tags.size }}|{{ q.constructor }}";
  assert.equal(renderTemplate(compileTemplate(fields), { q }), 'Why?|0|false|{"src":"x"}|x|ab|2|c');
  assert.equal(renderTemplate(compileTemplate("{{ q.meta | json }}"), { q }), '{"src":"x"}');
  // A field the answer lacks is the strict error any unknown variable is, never the object's machinery.
  assert.throws(() => renderTemplate(compileTemplate("{{ q.toString }}"), { q }), TemplateRenderError);
});
