/**
 * The plot-outline example: the tutorial workflow (genre × place × period × modifier loops, a UUID
 * at the top of each prompt, a short fine-tuning prompt, a second call to expand each outline,
 * clean-up) as a manifest. `synthbuild init` writes it; the repository's own dataset.yaml is it.
 */
export function exampleManifest(schemaPath: string): string {
  return `# yaml-language-server: $schema=${schemaPath}
version: 1
name: plot-outlines
seed: 42                      # drives nonces, sampling and splits

model:
  provider: openai            # any OpenAI-compatible endpoint; --offline uses the built-in echo provider
  name: gpt-4o-mini
  base_url: \${OPENAI_BASE_URL:-}   # empty = api.openai.com; the key comes from OPENAI_API_KEY
  params: { temperature: 1.0, max_tokens: 1000 }
  concurrency: 16

dimensions:
  genre: [science fiction, romance, comedy, horror]
  place: { file: data/places.txt }
  period: [the renaissance, the 1990s, the far future]
  modifier:
    - { value: cerebral and suspenseful, weight: 2 }
    - supernatural and otherworldly

combine:
  mode: product
  exclude:
    - { genre: romance, place: a generation ship between stars }

steps:
  - id: outline
    generate:
      prompt: |
        {{ nonce }}
        Imagine a complete and detailed plot outline for a {{ genre }} film set in {{ place }}
        during {{ period }}. The story should be {{ modifier }}.
  - id: expanded
    generate:
      model: { params: { max_tokens: 2000 } }   # a step may override any model field
      prompt: |
        Expand this plot outline into a complete, detailed plot outline: characters, acts and ending.

        {{ outline }}
  - id: clean
    map: { field: expanded, trim: true, replace: [{ pattern: "\\\\n{3,}", with: "\\n\\n" }] }
  - id: long-enough
    filter: { field: clean, min_chars: 400, drop_truncated: true }
  - id: unique
    dedupe: { field: clean, method: minhash, threshold: 0.85 }   # near-duplicates, not just equal texts

output:
  path: dist/plot-outlines.jsonl
  format: openai-chat
  system: You write detailed plot outlines.
  prompt: |-
    Genre: {{ genre }}
    Location: {{ place }}
    Period: {{ period }}
    Modifier: {{ modifier }}

    PLOT OUTLINE:
  completion: "{{ clean }}"
  split: { train: 0.9, validation: 0.1 }
`;
}
